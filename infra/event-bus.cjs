// custom.tickflow.eventBusName: the bus lifecycle events go to. The eventBusName parameter names an existing bus of
// this account and region; empty (the default), the deployment creates its own, tickflow-<stage> (infra/events.yml).
module.exports = async ({ resolveVariable }) => {
  const given = String((await resolveVariable('param:eventBusName')) ?? '').trim()
  if (given !== '') return given
  return `${await resolveVariable('self:service')}-${await resolveVariable('sls:stage')}`
}
