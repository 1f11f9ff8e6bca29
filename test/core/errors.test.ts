import t from 'tap';
import { NnfEnvError, errorMessage, errnoCode } from '../../src/core/errors.js';

t.test('NnfEnvError carries code and hint', async (t) => {
  const err = new NnfEnvError('EXAMPLE', 'it broke', { hint: 'do this' });
  t.equal(err.code, 'EXAMPLE');
  t.equal(err.name, 'NnfEnvError');
  t.equal(err.describe(), 'it broke (do this)');
  t.same(err.toJSON(), { code: 'EXAMPLE', message: 'it broke', hint: 'do this' });
  t.equal(errorMessage(err), 'it broke (do this)');
  t.equal(errorMessage('x'), 'x');
  t.equal(errnoCode(Object.assign(new Error('e'), { code: 'EBUSY' })), 'EBUSY');
  t.equal(errnoCode(null), undefined);
});
