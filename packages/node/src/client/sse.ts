/** One dispatched Server-Sent Events message (WHATWG HTML "event stream interpretation"). */
export interface SseMessage {
  event: string
  data: string
  id?: string
}

/**
 * Parses a `text/event-stream` body into messages. Comment lines (`:`) are skipped, `data` lines are
 * joined with newlines, and a message is dispatched at each blank line; a partial message at the end
 * of the stream is discarded, as the spec requires. Line ends may be LF, CRLF or CR.
 */
export async function* parseSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder('utf-8')
  let buffer = ''
  let event = ''
  let data: string[] = []
  let id: string | undefined
  let sawCr = false

  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true })
    let start = 0
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer.charCodeAt(i)
      if (c !== 0x0a && c !== 0x0d) {
        sawCr = false
        continue
      }
      // The LF of a CRLF pair ends no second line.
      if (c === 0x0a && sawCr && i === start) {
        sawCr = false
        start = i + 1
        continue
      }
      sawCr = c === 0x0d
      const line = buffer.slice(start, i)
      start = i + 1
      if (line === '') {
        if (data.length > 0)
          yield { event: event || 'message', data: data.join('\n'), ...(id !== undefined ? { id } : {}) }
        event = ''
        data = []
        continue
      }
      if (line.startsWith(':')) continue
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      let value = colon < 0 ? '' : line.slice(colon + 1)
      if (value.startsWith(' ')) value = value.slice(1)
      if (field === 'event') event = value
      else if (field === 'data') data.push(value)
      else if (field === 'id' && !value.includes('\0')) id = value
    }
    buffer = buffer.slice(start)
  }
}
