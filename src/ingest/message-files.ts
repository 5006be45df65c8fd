// SPDX-License-Identifier: Apache-2.0
/**
 * Reading message files for `send` and `replay`: folders walked recursively (`.hl7`, `.txt`),
 * each file decoded by its charset (MSH-18, BOM) and split into messages (batches, several MSH in
 * one file). Each message is re-encoded in the file's own charset, so the bytes sent are the bytes
 * that were in the file.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { decodeHl7Bytes, splitBatch } from '../hl7/index.js';
import { TributaryError, errorMessage } from '../errors.js';

/** File extensions picked up when walking folders. */
export const MESSAGE_FILE_EXTENSIONS = ['.hl7', '.txt'];

/** One message read from a file. */
export interface FileMessage {
  file: string;
  /** 0-based index of the message in its file. */
  index: number;
  bytes: Buffer;
  text: string;
}

/** The messages of one file, or why it could not be split. */
export interface MessageFile {
  file: string;
  messages: FileMessage[];
  /** Set when the file could not be decoded or split: it is sent whole, as one frame. */
  problem?: string;
}

/**
 * Expand files and folders into a sorted list of message files.
 * @throws TributaryError `CLI_FILE_UNREADABLE`
 */
export function collectMessageFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (p: string, explicit: boolean): void => {
    let st;
    try {
      st = statSync(p);
    } catch (e) {
      throw new TributaryError('CLI_FILE_UNREADABLE', { file: p, reason: (e as NodeJS.ErrnoException).code ?? errorMessage(e) });
    }
    if (st.isDirectory()) {
      for (const name of readdirSync(p).sort()) walk(join(p, name), false);
    } else if (explicit || MESSAGE_FILE_EXTENSIONS.includes(extname(p).toLowerCase())) {
      out.push(resolve(p));
    }
  };
  for (const p of paths) walk(p, true);
  return out;
}

/**
 * Read one file and split it into messages. A file that cannot be decoded or split is returned as
 * one message with its bytes untouched (the engine will answer it with a precise AR).
 * @throws TributaryError `CLI_FILE_UNREADABLE`
 */
export function readMessageFile(file: string): MessageFile {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new TributaryError('CLI_FILE_UNREADABLE', { file, reason: (e as NodeJS.ErrnoException).code ?? errorMessage(e) });
  }
  try {
    const decoded = decodeHl7Bytes(bytes);
    const { messages } = splitBatch(decoded.text);
    if (messages.length === 0) return { file, messages: [{ file, index: 0, bytes, text: decoded.text }], problem: 'no message' };
    const encoding: BufferEncoding = decoded.charset === '8859/1' || decoded.charset === 'ASCII' ? 'latin1' : 'utf8';
    if (messages.length === 1 && !decoded.bom) return { file, messages: [{ file, index: 0, bytes, text: messages[0]! }] };
    return { file, messages: messages.map((text, index) => ({ file, index, text, bytes: Buffer.from(text, encoding) })) };
  } catch (e) {
    return { file, messages: [{ file, index: 0, bytes, text: bytes.toString('latin1') }], problem: errorMessage(e) };
  }
}
