// SPDX-License-Identifier: Apache-2.0
/**
 * MLLP framing (MLLP Release 2, HL7 v2.5.1 Appendix C): Buffers in, frame bodies out. No sockets
 * here; the network layer owns connections and feeds this codec.
 *
 * @module
 */
export {
  CR,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_OVERSIZE_PREFIX_BYTES,
  FS,
  MllpDecoder,
  MllpPayloadDecoder,
  VT,
  encodeFrame,
} from './framer.js';
export type { MllpDecoderOptions, MllpEvent } from './framer.js';
