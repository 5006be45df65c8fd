// SPDX-License-Identifier: Apache-2.0
/** The engine thread's entry (see thread.ts): load the CLI and run it with the process's arguments. */
import { workerData } from 'node:worker_threads';

const { entry, argv } = workerData as { entry: string; argv: string[] };
const cli = (await import(entry)) as { main(argv: string[]): void };
cli.main(argv);
