import { z } from 'zod'

/**
 * The attributes of a dead letter, shared by the SQS dead-letter adapter and the in-process LocalQueue so that both
 * carry the same ones. A dead letter keeps the original body unchanged; why and where it was dead-lettered travel as
 * String message attributes named like the envelope's fields.
 */
export const MAX_DEAD_LETTER_REASON_CHARS = 1000
const MAX_DEAD_LETTER_FIELD_CHARS = 256

export const deadLetterEnvelopeSchema = z.object({
  reason: z.string().min(1).max(MAX_DEAD_LETTER_REASON_CHARS),
  source: z.string().min(1).max(MAX_DEAD_LETTER_FIELD_CHARS),
  originalMessageId: z.string().min(1).max(MAX_DEAD_LETTER_FIELD_CHARS).optional(),
})

export type DeadLetterEnvelope = z.infer<typeof deadLetterEnvelopeSchema>

/** Characters outside what SQS accepts in a message (XML 1.0 characters) would make the whole send fail. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what it removes
const NOT_SQS_TEXT = /[^\u0009\u000A\u000D\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu

/** At most `max` UTF-16 units, never ending in half a surrogate pair (SQS rejects a lone surrogate). */
const truncate = (text: string, max: number): string => {
  if (text.length <= max) return text
  const cut = text.slice(0, max)
  const last = cut.charCodeAt(cut.length - 1)
  return last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut
}

/** SQS rejects an empty attribute value, so an empty one becomes `fallback`. */
const attributeText = (text: string, max: number, fallback: string): string => {
  const clean = truncate(text.replace(NOT_SQS_TEXT, '\uFFFD'), max)
  return clean === '' ? fallback : clean
}

/** The attributes of a dead letter: texts SQS accepts, the reason cut to 1000 characters. */
export const deadLetterAttributes = (message: {
  reason: string
  source: string
  messageId?: string
}): DeadLetterEnvelope => ({
  reason: attributeText(message.reason, MAX_DEAD_LETTER_REASON_CHARS, 'unspecified'),
  source: attributeText(message.source, MAX_DEAD_LETTER_FIELD_CHARS, 'unknown'),
  ...(message.messageId === undefined || message.messageId === ''
    ? {}
    : { originalMessageId: attributeText(message.messageId, MAX_DEAD_LETTER_FIELD_CHARS, 'unknown') }),
})
