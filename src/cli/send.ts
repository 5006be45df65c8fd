// SPDX-License-Identifier: Apache-2.0
/** `tributary send FILE...`: send messages over MLLP and print one line per ACK. */
import { MllpClient } from '../interfaces/mllp-client.js';
import { collectMessageFiles, readMessageFile } from '../ingest/message-files.js';
import { isTributaryError } from '../errors.js';
import { Hl7Message, decodeHl7Bytes } from '../hl7/index.js';
import { EXIT, readAck, type CliIO } from './common.js';

/** Flags of `tributary send`. */
export interface SendArgs {
  files: string[];
  host: string;
  port: number;
  timeoutMs: number;
  /** Put this in MSH-8 of every message (a credential: `user:secret`). */
  security?: string;
}

/** The message with MSH-8 set, re-encoded in its own charset; unparseable bytes go as they are (the engine answers them). */
function withSecurity(bytes: Buffer, security: string): Buffer {
  try {
    const { text, charset } = decodeHl7Bytes(bytes);
    const msg = Hl7Message.parse(text);
    msg.set('MSH-8', security);
    return Buffer.from(msg.toString(), charset === '8859/1' || charset === 'ASCII' ? 'latin1' : 'utf8');
  } catch {
    return bytes;
  }
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
          ackText = (await client.send(args.security === undefined ? m.bytes : withSecurity(m.bytes, args.security))).toString('utf8');
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
