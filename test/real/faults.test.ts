/**
 * Whether the real-server half of the suites runs (test/e2e, test/reliability, the full path,
 * doctor): this file says so in one line when it is skipped, and why. Under CI=true a real
 * server that cannot be built or started fails here.
 */
import t from 'tap';
import { realServerSkipReason, sharedRealServer } from '../helpers/real-server.js';

const why = await realServerSkipReason();
if (why !== undefined) {
  t.plan(0, `real-server half skipped: ${why}`);
} else {
  t.test('the real API server starts and answers', async (t) => {
    const s = await sharedRealServer();
    t.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    await s.stop();
  });
}
