// Benchmark script step: reads the mapped hospital service (PV1-10) and sets the servicing
// facility (PV1-39) from the channel's `facilities` table.
export default function facility(msg, ctx) {
  msg.set('PV1-39', ctx.lookup('facilities', msg.get('PV1-10'), 'NORTHSIDE'));
}
