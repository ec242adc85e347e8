export * from './types.ts'
export {
  encodeMessage,
  decodeMessage,
  type DecodeOptions,
  encodeViewChangeBody,
  decodeViewChangeBody,
  encodeNewViewBody,
  encodeStatusBody,
  consensusSigningMessage,
  certificateMessage,
} from './codec.ts'
