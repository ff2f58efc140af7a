import { del, get, post, type Schedule } from '../api-client.js'
import { cellTime, clear, h, parseJsonObject } from '../dom.js'
import { actionButton, describeError, field, message, outcomeSlot, panel, runAction, typeSelect } from '../ui.js'

/** The recurring schedules (`#/schedules`): list, create, delete. */
export const schedulesView = async (root: HTMLElement): Promise<void> => {
  const list = h('div', { class: 'table-scroll' })
  const name = h('input', { name: 'name', required: true, placeholder: 'nightly-billing' }) as HTMLInputElement
  const expression = h('input', {
    name: 'expression',
    required: true,
    placeholder: 'cron(0 2 * * ? *) or rate(5 minutes)',
  }) as HTMLInputElement
  const timezone = h('input', { name: 'timezone', placeholder: 'Europe/Paris (optional)' }) as HTMLInputElement
  const type = typeSelect('workflowType', undefined, false)
  const context = h('textarea', { name: 'context', rows: 2, placeholder: '{}' }) as HTMLTextAreaElement
  const form = h(
    'form',
    { class: 'create', 'aria-label': 'new schedule' },
    field('Name', name),
    field('Expression', expression),
    field('Time zone', timezone),
    field('Type', type),
    field('Context (JSON)', context),
    h('div', { class: 'action-row' }, h('button', { type: 'submit' }, 'Create schedule'), outcomeSlot('schedule', '')),
  )
  const load = async () => {
    try {
      const { items } = await get<{ items: Schedule[] }>('schedules')
      clear(
        list,
        items.length
          ? h(
              'table',
              {},
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  ...['name', 'expression', 'time zone', 'type', 'enabled', 'next', ''].map((title) =>
                    h('th', {}, title),
                  ),
                ),
              ),
              h(
                'tbody',
                {},
                ...items.map((item) =>
                  h(
                    'tr',
                    { 'data-schedule': item.name },
                    h('td', {}, item.name),
                    h('td', {}, h('code', {}, item.expression)),
                    h('td', {}, item.timezone ?? 'UTC'),
                    h('td', {}, item.workflowType),
                    h('td', {}, item.enabled ? 'yes' : 'no'),
                    h('td', {}, cellTime(item.nextFireAtMs)),
                    h(
                      'td',
                      {},
                      actionButton(
                        'Delete',
                        {
                          key: 'delete-schedule',
                          state: '',
                          confirm: `Delete schedule ${item.name}?`,
                          run: async () => {
                            await del(`schedules/${encodeURIComponent(item.name)}`)
                            return `deleted ${item.name}`
                          },
                          after: () => void load(),
                        },
                        { class: 'danger small' },
                      ),
                    ),
                  ),
                ),
              ),
            )
          : h('p', { class: 'muted' }, 'No schedule.'),
      )
    } catch (error) {
      clear(list, message('error', describeError(error)))
    }
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    void runAction({
      key: 'schedule',
      state: '',
      confirm: `Create schedule ${name.value}?`,
      run: async () => {
        const body = {
          name: name.value.trim(),
          expression: expression.value.trim(),
          workflowType: type.value,
          context: parseJsonObject(context.value, 'the context'),
          ...(timezone.value.trim() ? { timezone: timezone.value.trim() } : {}),
        }
        const stored = await post<Schedule>('schedules', body)
        return `stored ${stored.name}`
      },
      after: () => void load(),
    })
  })
  // A deleted schedule's row is gone once the list is read again: its outcome shows above the list too.
  clear(
    root,
    h('h1', {}, 'Schedules'),
    panel('New schedule', form),
    panel('Schedules', outcomeSlot('delete-schedule', ''), list),
  )
  await load()
}
