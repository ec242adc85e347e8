export * from './types.ts'
export {
  encodeMessage,
  decodeMessage,
  type DecodeOptions,
  encodeViewChangeBody,
  decodeViewChangeBody,
  encodeNewViewBody,
  encodeStatusBody,
  encodeBlockRequestBody,
  consensusSigningMessage,
  certificateMessage,
} from './codec.ts'
