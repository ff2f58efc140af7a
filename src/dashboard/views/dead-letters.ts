import { type DeadLetterQueue, get, post, request } from '../api-client.js'
import { cellTime, clear, h } from '../dom.js'
import { actionButton, describeError, message, outcomeSlot, panel } from '../ui.js'

/** The local runtime's dead-letter queues (`#/dead-letters`): each message with its reason, and redrives. */
export const deadLettersView = async (root: HTMLElement): Promise<void> => {
  const list = h('div', {})
  const load = async () => {
    try {
      const { items } = await get<{ items: DeadLetterQueue[] }>('_local/dead-letters')
      clear(
        list,
        ...items.map((queue) =>
          panel(
            queue.deadLetterQueue,
            h(
              'div',
              { class: 'queue-head' },
              h(
                'p',
                {},
                queue.messages.length
                  ? `${queue.messages.length} message(s); a redrive moves them back to ${queue.queue}.`
                  : `Empty (its messages would come from ${queue.queue}).`,
              ),
              // One outcome per queue: a redriven message's row is gone once the list is read again.
              queue.messages.length
                ? actionButton('Redrive all', {
                    key: `redrive:${queue.queue}`,
                    state: '',
                    confirm: `Redrive every message of ${queue.deadLetterQueue} to ${queue.queue}?`,
                    run: async () => {
                      const result = await post<{ moved: string[] }>(
                        `_local/dead-letters/${encodeURIComponent(queue.queue)}/redrive`,
                      )
                      return `moved ${result.moved.length} message(s) to ${queue.queue}`
                    },
                    after: () => void load(),
                  })
                : outcomeSlot(`redrive:${queue.queue}`, ''),
            ),
            queue.messages.length
              ? h(
                  'div',
                  { class: 'table-scroll' },
                  h(
                    'table',
                    {},
                    h(
                      'thead',
                      {},
                      h('tr', {}, ...['message', 'reason', 'sent', 'body', ''].map((t) => h('th', {}, t))),
                    ),
                    h(
                      'tbody',
                      {},
                      ...queue.messages.map((item) =>
                        h(
                          'tr',
                          {},
                          h('td', {}, h('code', {}, item.messageId)),
                          h('td', { class: 'reason' }, item.reason),
                          h('td', {}, cellTime(item.sentAtMs)),
                          h('td', {}, h('pre', { class: 'json' }, item.body.slice(0, 500))),
                          h(
                            'td',
                            {},
                            actionButton('Redrive', {
                              key: `redrive:${queue.queue}`,
                              state: '',
                              confirm: `Redrive message ${item.messageId}?`,
                              run: async () => {
                                await request(
                                  'POST',
                                  `_local/dead-letters/${encodeURIComponent(queue.queue)}/redrive`,
                                  {
                                    body: { messageIds: [item.messageId] },
                                  },
                                )
                                return `moved ${item.messageId} to ${queue.queue}`
                              },
                              after: () => void load(),
                            }),
                          ),
                        ),
                      ),
                    ),
                  ),
                )
              : '',
          ),
        ),
      )
    } catch (error) {
      clear(list, message('error', describeError(error)))
    }
  }
  clear(root, h('h1', {}, 'Dead-letter queues (local)'), list)
  await load()
}
