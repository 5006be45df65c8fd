// SPDX-License-Identifier: Apache-2.0
/** Command-line handling shared by the bench scripts: parse flags strictly, print usage on errors and --help. */
import { parseArgs } from 'node:util';

type Options = NonNullable<Parameters<typeof parseArgs>[0]>['options'] & object;

/** Print the problem and the usage text, exit 2. */
export function usage(help: string, message: string): never {
  process.stderr.write(`${message}\n\n${help}\n`);
  process.exit(2);
}

/**
 * Parse `argv` against `options` (which should declare `help`): unknown flags and positionals are
 * errors (printed with the usage, exit 2); `--help` prints the usage and exits 0.
 */
export function parseFlags<const O extends Options>(
  argv: string[],
  options: O,
  help: string,
): ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: false }>>['values'] {
  let values;
  try {
    values = parseArgs({ args: argv, options, strict: true as const, allowPositionals: false as const }).values;
  } catch (e) {
    usage(help, (e as Error).message);
  }
  if ((values as { help?: boolean }).help) {
    process.stdout.write(`${help}\n`);
    process.exit(0);
  }
  return values as ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: false }>>['values'];
}
