// SPDX-License-Identifier: Apache-2.0
/**
 * Reading message files for `send` and `replay`: folders walked recursively (`.hl7`, `.txt`),
 * each file decoded by its charset (MSH-18, BOM) and split into messages (batches, several MSH in
 * one file). Each message is re-encoded in the file's own charset, so the bytes sent are the bytes
 * that were in the file. A capture of MLLP traffic (each message framed VT ... FS CR) is unwrapped
 * first; each frame is decoded and split on its own.
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
  /** Set when the file (or a frame of a capture) could not be decoded or split: that part is sent whole, as one frame. */
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

/** MLLP start block (VT) and end block (FS): a capture of MLLP traffic keeps them around each message. */
const VT = 0x0b;
const FS = 0x1c;
const CR = 0x0d;

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}

/**
 * True when the bytes are an MLLP capture: the first byte that is not white space is VT (0x0B).
 * (HL7 text never contains VT, so this cannot misread a plain message file.)
 */
export function isFramedCapture(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (!isSpace(bytes[i]!)) return bytes[i] === VT;
  return false;
}

/**
 * Unwrap an MLLP capture into the frame bodies, in order. White space between frames is skipped;
 * other bytes between frames, and a last frame without its end block (a capture cut short), are
 * kept as chunks of their own so nothing in the file is silently dropped.
 */
export function unwrapFrames(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const start = bytes.indexOf(VT, pos);
    const gapEnd = start === -1 ? bytes.length : start;
    let blank = true;
    for (let i = pos; i < gapEnd && blank; i++) blank = isSpace(bytes[i]!);
    if (!blank) out.push(bytes.subarray(pos, gapEnd));
    if (start === -1) break;
    const end = bytes.indexOf(FS, start + 1);
    if (end === -1) {
      out.push(bytes.subarray(start + 1));
      break;
    }
    out.push(bytes.subarray(start + 1, end));
    pos = end + 1 < bytes.length && bytes[end + 1] === CR ? end + 2 : end + 1;
  }
  return out;
}

interface Split {
  /** Each message's text and the bytes to send (the file's own bytes when the chunk is one message). */
  messages: Array<{ text: string; bytes: () => Buffer }>;
  problem?: string;
}

/** Decode one chunk (a whole plain file, or one frame of a capture) and split it into messages. */
function splitChunk(bytes: Buffer): Split {
  try {
    const decoded = decodeHl7Bytes(bytes);
    const { messages } = splitBatch(decoded.text);
    if (messages.length === 0) return { messages: [{ text: decoded.text, bytes: () => bytes }], problem: 'no message' };
    const encoding: BufferEncoding = decoded.charset === '8859/1' || decoded.charset === 'ASCII' ? 'latin1' : 'utf8';
    if (messages.length === 1 && !decoded.bom) return { messages: [{ text: messages[0]!, bytes: () => bytes }] };
    return { messages: messages.map((text) => ({ text, bytes: () => Buffer.from(text, encoding) })) };
  } catch (e) {
    return { messages: [{ text: bytes.toString('latin1'), bytes: () => bytes }], problem: errorMessage(e) };
  }
}

function readBytes(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new TributaryError('CLI_FILE_UNREADABLE', { file, reason: (e as NodeJS.ErrnoException).code ?? errorMessage(e) });
  }
}

function splitFile(bytes: Buffer): Split[] {
  return isFramedCapture(bytes) ? unwrapFrames(bytes).map(splitChunk) : [splitChunk(bytes)];
}

/**
 * Read one file and split it into messages. A file that cannot be decoded or split is returned as
 * one message with its bytes untouched (the engine will answer it with a precise AR). A capture
 * of MLLP traffic (VT ... FS CR around each message) is unwrapped first, frame by frame.
 * @throws TributaryError `CLI_FILE_UNREADABLE`
 */
export function readMessageFile(file: string): MessageFile {
  const chunks = splitFile(readBytes(file));
  const messages: FileMessage[] = [];
  let problem: string | undefined;
  for (const chunk of chunks) {
    problem ??= chunk.problem;
    for (const m of chunk.messages) messages.push({ file, index: messages.length, text: m.text, bytes: m.bytes() });
  }
  return problem === undefined ? { file, messages } : { file, messages, problem };
}

/**
 * How many messages {@link readMessageFile} returns for the file, without building them (no
 * per-message Buffers; the file is read and split, then dropped). Used for progress totals.
 * @throws TributaryError `CLI_FILE_UNREADABLE`
 */
export function countMessages(file: string): number {
  let n = 0;
  for (const chunk of splitFile(readBytes(file))) n += chunk.messages.length;
  return n;
}
