// SPDX-License-Identifier: Apache-2.0
/**
 * MLLP framing codec: bytes in, frame bodies out. Buffers only — no sockets, no charsets, no HL7.
 *
 * A frame is `VT payload FS CR` (MLLP Release 2, HL7 v2.5.1 Appendix C, "Block format"). The
 * decoder is an incremental state machine (`SEEK_START → IN_BODY → AFTER_FS`) in the manner of
 * HAPI's `MllpDecoderState` and the nats.js parser: it scans only the bytes it is given, keeps
 * offsets into the current chunk, and holds the body of a frame that spans chunks as a list of
 * subarrays joined once when the frame ends. Text decoding (MSH-18) happens later, on whole
 * frames, in the HL7 layer.
 *
 * It is lenient where real senders are sloppy (junk between frames, `FS` without `CR`, a frame
 * restarted with a second `VT`) and strict where leniency would cost memory (`maxFrameBytes`).
 *
 * @module
 */
import { TributaryError } from '../errors.js';

/** MLLP start block byte (vertical tab, 0x0B). */
export const VT = 0x0b;
/** MLLP end block byte (file separator, 0x1C). */
export const FS = 0x1c;
/** Carriage return (0x0D): follows `FS` to end a frame; also the HL7 segment terminator. */
export const CR = 0x0d;

/** Default largest frame body accepted, in bytes (16 MiB). */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** Default number of bytes of an oversize frame kept for the journal (64 KiB). */
export const DEFAULT_OVERSIZE_PREFIX_BYTES = 64 * 1024;

/**
 * Body pieces shorter than this are copied into a shared block instead of being kept as
 * subarrays. A sender that trickles a frame one byte per TCP segment would otherwise make us
 * hold one Buffer object (~100 bytes of overhead) per byte, so memory would no longer be
 * bounded by `maxFrameBytes`. Each byte is copied at most once more, so this stays linear.
 */
const COALESCE_BELOW_BYTES = 1024;
/** Size of a block that collects small body pieces (16 KiB). */
const COALESCE_BLOCK_BYTES = 16 * 1024;

/** Decoder states. */
const SEEK_START = 0;
const IN_BODY = 1;
const AFTER_FS = 2;
type State = typeof SEEK_START | typeof IN_BODY | typeof AFTER_FS;

/** Options of {@link MllpDecoder}. Sizes are in bytes; both must be non-negative integers. */
export interface MllpDecoderOptions {
  /**
   * Largest frame body accepted (without `VT`/`FS`/`CR`); default {@link DEFAULT_MAX_FRAME_BYTES}.
   * A body of exactly this size is accepted; one byte more makes the frame `oversize`.
   */
  maxFrameBytes?: number;
  /**
   * Bytes of an oversize frame kept for the journal; default {@link DEFAULT_OVERSIZE_PREFIX_BYTES}.
   * Capped at `maxFrameBytes`, so the prefix never depends on how the stream was split.
   */
  oversizePrefixBytes?: number;
}

/** What {@link MllpDecoder.push} reports, in stream order. */
export type MllpEvent =
  /**
   * One complete frame body (without `VT`/`FS`/`CR`); may be empty (`VT FS CR`), which the
   * listener answers with AR. When the whole frame lay in one chunk, `payload` is a subarray of
   * that chunk (no copy): the caller must not reuse or mutate the chunks it pushes.
   */
  | { kind: 'frame'; payload: Buffer }
  /**
   * Emitted once when a frame body passes `maxFrameBytes`. `prefix` is a copy of its first
   * `min(oversizePrefixBytes, maxFrameBytes)` bytes; `bytesSeen` (> `maxFrameBytes`) is the body
   * size known at that moment. The decoder then discards the rest of that frame up to its `FS`
   * (or a new `VT`) and resumes normally; no `frame` event follows for it.
   */
  | { kind: 'oversize'; prefix: Buffer; bytesSeen: number };

function checkSize(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  // A NaN limit would make every `>` comparison false and silently lift the cap.
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TributaryError('CONFIG_INVALID', {
      issues: `${name}: must be a non-negative integer number of bytes, got ${String(value)}`,
    });
  }
  return value;
}

/**
 * Incremental MLLP decoder (MLLP Release 2, HL7 v2.5.1 Appendix C), one per connection.
 *
 * States and leniencies:
 * - `SEEK_START`: bytes up to the next `VT` are skipped and counted in {@link strayBytes}
 *   (junk, or the `"\r\n"` some senders put between frames).
 * - `IN_BODY`: bytes up to `FS` are the body. The frame is emitted as soon as `FS` arrives,
 *   without waiting for the `CR`: the sender has sent everything it will send before waiting for
 *   the ACK, and the `CR` may arrive in a later TCP segment, so waiting would only add latency.
 * - `AFTER_FS`: if the next byte is `CR` it is consumed; otherwise {@link fsWithoutCr} is counted
 *   and that byte is handled in `SEEK_START`.
 *
 * **A `VT` inside a body** means the sender restarted a frame without finishing the previous one
 * (VT may not occur in HL7 data, so it cannot be content). The partial frame is discarded — its
 * `VT` and body bytes are counted in {@link strayBytes} — and a new frame starts at the new `VT`.
 * This resynchronises on the sender's intent instead of gluing two messages into one. An
 * abandoned part longer than `maxFrameBytes` is reported as `oversize` instead of stray bytes,
 * and the same restart rule applies while an oversize frame is being discarded (those bytes were
 * already reported by the `oversize` event and are not counted again).
 *
 * Cost and memory: each pushed byte is examined a bounded number of times (one `indexOf` pass
 * for `VT` and one for `FS` per chunk), a frame that spans chunks is joined once, and the bytes
 * held for the frame in progress never exceed `maxFrameBytes` (plus the last chunk, which a
 * zero-copy subarray keeps alive, and one small coalescing block).
 *
 * `push()` never throws; the constructor throws `CONFIG_INVALID` for invalid options.
 */
export class MllpDecoder {
  readonly #maxFrameBytes: number;
  readonly #prefixBytes: number;

  #state: State = SEEK_START;
  /** Body bytes of the current frame seen so far, including discarded ones. */
  #bodySeen = 0;
  /** True once the current frame went oversize: its bytes are dropped until `FS` or `VT`. */
  #discarding = false;
  /** Sealed body pieces of the current frame, in order (subarrays of chunks, or blocks). */
  #parts: Buffer[] = [];
  /** Open block collecting small pieces; logically follows `#parts`. */
  #block: Buffer | null = null;
  #blockUsed = 0;
  /** Bytes held in `#parts` plus `#blockUsed`. */
  #buffered = 0;

  #strayBytes = 0;
  #fsWithoutCr = 0;
  #framesDecoded = 0;

  /**
   * @param options - size limits; see {@link MllpDecoderOptions}
   * @throws TributaryError `CONFIG_INVALID` when a size is not a non-negative integer
   */
  constructor(options: MllpDecoderOptions = {}) {
    this.#maxFrameBytes = checkSize('maxFrameBytes', options.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES);
    this.#prefixBytes = Math.min(
      checkSize('oversizePrefixBytes', options.oversizePrefixBytes, DEFAULT_OVERSIZE_PREFIX_BYTES),
      this.#maxFrameBytes,
    );
  }

  /** Bytes seen outside frames and skipped, including frames abandoned by a new `VT`. Cumulative. */
  get strayBytes(): number {
    return this.#strayBytes;
  }

  /** Frames whose `FS` was not followed by `CR` (including a stream that ended right after `FS`). Cumulative. */
  get fsWithoutCr(): number {
    return this.#fsWithoutCr;
  }

  /** Frames emitted so far (oversize frames are not counted). Cumulative. */
  get framesDecoded(): number {
    return this.#framesDecoded;
  }

  /** Bytes of the frame in progress held in memory (for backpressure and memory accounting). */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** True between a frame's `VT` and its `FS`. */
  get inFrame(): boolean {
    return this.#state === IN_BODY;
  }

  /**
   * Feed the next bytes of the stream.
   *
   * @param chunk - the next bytes; kept by reference (not copied) while its frame is incomplete
   * @returns the events completed by these bytes, in stream order (often empty)
   */
  push(chunk: Buffer): MllpEvent[] {
    const events: MllpEvent[] = [];
    const len = chunk.length;
    let pos = 0;
    // Positions of the next VT / FS at or after the last search start, -1 for "none up to the
    // end of the chunk", -2 for "not searched yet". A search is redone only once `pos` has moved
    // past the cached hit, so every byte is scanned at most once per marker: linear per chunk
    // even when one chunk holds thousands of frames.
    let vtAt = -2;
    let fsAt = -2;

    while (pos < len) {
      if (this.#state === SEEK_START) {
        if (vtAt !== -1 && vtAt < pos) vtAt = chunk.indexOf(VT, pos);
        if (vtAt < 0) {
          this.#strayBytes += len - pos;
          break;
        }
        this.#strayBytes += vtAt - pos;
        this.#startFrame();
        pos = vtAt + 1;
      } else if (this.#state === IN_BODY) {
        if (fsAt !== -1 && fsAt < pos) fsAt = chunk.indexOf(FS, pos);
        if (vtAt !== -1 && vtAt < pos) vtAt = chunk.indexOf(VT, pos);
        const end = fsAt < 0 ? len : fsAt;
        if (vtAt >= 0 && vtAt < end) {
          // A new VT before this frame's FS: the sender restarted (see the class TSDoc). The
          // abandoned part is checked against the limit first, so whether it is reported as
          // `oversize` or as stray bytes does not depend on where the chunks were cut.
          if (!this.#discarding) {
            const partial = chunk.subarray(pos, vtAt);
            if (this.#bodySeen + partial.length > this.#maxFrameBytes) events.push(this.#overflow(partial));
            else this.#strayBytes += 1 + this.#bodySeen + partial.length;
          }
          this.#startFrame();
          pos = vtAt + 1;
          continue;
        }
        const piece = chunk.subarray(pos, end);
        if (!this.#discarding && this.#bodySeen + piece.length > this.#maxFrameBytes) {
          events.push(this.#overflow(piece));
        }
        this.#bodySeen += piece.length;
        if (fsAt < 0) {
          if (!this.#discarding) this.#append(piece);
          break;
        }
        if (!this.#discarding) {
          events.push({ kind: 'frame', payload: this.#join(piece) });
          this.#framesDecoded++;
        }
        this.#clearFrame();
        this.#state = AFTER_FS;
        pos = fsAt + 1;
      } else {
        // AFTER_FS: the frame is already out; only decide whether the terminator was complete.
        if (chunk[pos] === CR) pos++;
        else this.#fsWithoutCr++;
        this.#state = SEEK_START;
      }
    }
    return events;
  }

  /**
   * The stream ended (connection closed). Resets the framing state so the decoder can be reused;
   * the cumulative counters are kept.
   *
   * @returns the bytes of an incomplete frame that are discarded, counting its `VT` (so the
   *   result is 0 exactly when no frame was in progress); for the journal's `MLLP_INCOMPLETE_FRAME`
   */
  end(): number {
    let discarded = 0;
    if (this.#state === IN_BODY) discarded = 1 + this.#bodySeen;
    else if (this.#state === AFTER_FS) this.#fsWithoutCr++; // the CR never came
    this.#clearFrame();
    this.#state = SEEK_START;
    return discarded;
  }

  #startFrame(): void {
    this.#clearFrame();
    this.#state = IN_BODY;
  }

  #clearFrame(): void {
    this.#bodySeen = 0;
    this.#discarding = false;
    this.#parts = [];
    this.#block = null;
    this.#blockUsed = 0;
    this.#buffered = 0;
  }

  /** Keep a body piece of a frame that continues in a later chunk. */
  #append(piece: Buffer): void {
    const n = piece.length;
    if (n === 0) return;
    if (n >= COALESCE_BELOW_BYTES) {
      this.#sealBlock();
      this.#parts.push(piece);
    } else {
      if (this.#block === null || this.#block.length - this.#blockUsed < n) {
        this.#sealBlock();
        this.#block = Buffer.allocUnsafe(COALESCE_BLOCK_BYTES);
      }
      piece.copy(this.#block, this.#blockUsed);
      this.#blockUsed += n;
    }
    this.#buffered += n;
  }

  #sealBlock(): void {
    if (this.#block !== null && this.#blockUsed > 0) {
      this.#parts.push(this.#block.subarray(0, this.#blockUsed));
    }
    this.#block = null;
    this.#blockUsed = 0;
  }

  /** The whole body: zero-copy when it lies in one piece, otherwise one `Buffer.concat`. */
  #join(tail: Buffer): Buffer {
    this.#sealBlock();
    if (this.#parts.length === 0) return tail;
    if (tail.length > 0) this.#parts.push(tail);
    const parts = this.#parts;
    if (parts.length === 1 && parts[0] !== undefined) return parts[0];
    return Buffer.concat(parts, this.#buffered + tail.length);
  }

  /** The body passed the limit: build the event, drop what is held, discard until FS. */
  #overflow(piece: Buffer): MllpEvent {
    this.#sealBlock();
    const prefix = Buffer.alloc(this.#prefixBytes);
    let filled = 0;
    for (const part of [...this.#parts, piece]) {
      if (filled >= prefix.length) break;
      filled += part.copy(prefix, filled, 0, Math.min(part.length, prefix.length - filled));
    }
    const bytesSeen = this.#bodySeen + piece.length;
    this.#parts = [];
    this.#buffered = 0;
    this.#discarding = true;
    return { kind: 'oversize', prefix, bytesSeen };
  }
}

/**
 * Convenience for clients (CLI send, tests): wraps an {@link MllpDecoder} and returns only the
 * frame payloads. Oversize frames are dropped and counted in {@link oversizeFrames}.
 */
export class MllpPayloadDecoder {
  /** The underlying decoder, for its counters. */
  readonly decoder: MllpDecoder;
  #oversizeFrames = 0;

  /** @param options - size limits; see {@link MllpDecoderOptions} */
  constructor(options?: MllpDecoderOptions) {
    this.decoder = new MllpDecoder(options);
  }

  /** Frames dropped because they passed `maxFrameBytes`. */
  get oversizeFrames(): number {
    return this.#oversizeFrames;
  }

  /**
   * Feed the next bytes of the stream.
   *
   * @returns the payloads of the frames completed by these bytes, in order
   */
  push(chunk: Buffer): Buffer[] {
    const payloads: Buffer[] = [];
    for (const event of this.decoder.push(chunk)) {
      if (event.kind === 'frame') payloads.push(event.payload);
      else this.#oversizeFrames++;
    }
    return payloads;
  }

  /** The stream ended; see {@link MllpDecoder.end}. */
  end(): number {
    return this.decoder.end();
  }
}

/**
 * Wrap a payload in an MLLP frame: `VT payload FS CR`.
 *
 * @param payload - the message; a string is encoded as UTF-8 (pass a Buffer for other charsets)
 * @returns a new Buffer holding the frame
 * @throws TributaryError `HL7_CONTROL_BYTES` when the payload contains `VT` or `FS`: the receiver
 *   would cut the message there, so such a frame would silently deliver something else
 */
export function encodeFrame(payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const vt = body.indexOf(VT);
  const fs = body.indexOf(FS);
  if (vt >= 0 || fs >= 0) {
    const offset = vt < 0 ? fs : fs < 0 ? vt : Math.min(vt, fs);
    throw new TributaryError('HL7_CONTROL_BYTES', { byte: offset === vt ? '0b' : '1c', offset });
  }
  const out = Buffer.allocUnsafe(body.length + 3);
  out[0] = VT;
  body.copy(out, 1);
  out[body.length + 1] = FS;
  out[body.length + 2] = CR;
  return out;
}
