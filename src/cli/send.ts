// SPDX-License-Identifier: Apache-2.0
/** `tributary send FILE...`: send messages over MLLP and print one line per ACK. */
import { MllpClient } from '../interfaces/mllp-client.js';
import { collectMessageFiles, readMessageFile } from '../ingest/message-files.js';
import { isTributaryError } from '../errors.js';
import { EXIT, readAck, type CliIO } from './common.js';

/** Flags of `tributary send`. */
export interface SendArgs {
  files: string[];
  host: string;
  port: number;
  timeoutMs: number;
}

/** Send every message of the files, in order, on one connection. */
export async function runSend(args: SendArgs, io: CliIO): Promise<number> {
  const files = collectMessageFiles(args.files);
  const client = await MllpClient.connect({ host: args.host, port: args.port, ackTimeoutMs: args.timeoutMs });
  let exit: number = EXIT.ok;
  try {
    for (const file of files) {
      for (const m of readMessageFile(file).messages) {
        let ackText: string;
        try {
          ackText = (await client.send(m.bytes)).toString('utf8');
        } catch (e) {
          if (!isTributaryError(e)) throw e;
          io.stdout.write(`${file}#${m.index + 1}\t-\tNO-ACK\t${e.message}\n`);
          return EXIT.transport;
        }
        const ack = readAck(ackText);
        io.stdout.write(`${ack.controlId || '(no MSH-10)'}\t${ack.code}\t${ack.text}\n`);
        if (ack.code !== 'AA' && ack.code !== 'CA') exit = EXIT.notAccepted;
      }
    }
  } finally {
    await client.close();
  }
  return exit;
}
