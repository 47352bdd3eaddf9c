import { tokensFromEnv } from './auth';
import { placeholderReason } from './token-policy';

describe('placeholder bearer tokens', () => {
  // Each of these is 16+ characters, so the length rule alone let them through before.
  const placeholders: [string, RegExp][] = [
    ['change-me-change-me-change-me', /placeholder word "changeme"/],
    ['CHANGE_ME_operator_token_1', /placeholder word "changeme"/],
    ['REPLACE-operator-token-with-a-random-value', /placeholder word "replace"/],
    ['my-placeholder-token-0001', /placeholder word "placeholder"/],
    ['operator-token-example-123', /placeholder word "example"/],
    ['xxxxxxxxxxxxxxxxxxxxxxxx', /"xxxx"/],
    ['op-XXXX-XXXX-XXXX-XXXX', /"xxxx"/],
    ['<operator-token-here>123', /template characters/],
    ['${OPERATOR_TOKEN}-000001', /template characters/],
    ['aaaaaaaaaaaaaaaaaaaaaaaa', /only 1 distinct characters/],
    ['abababababababababababab', /only 2 distinct characters/],
    ['1234123412341234', /only 4 distinct characters/],
    ['ops-9f2ak7qz-00000000000000000000', /repeats one character 20 times/],
  ];

  it.each(placeholders)('refuses %s, naming the rule', (token, rule) => {
    expect(placeholderReason(token)).toMatch(rule);
    expect(() => tokensFromEnv({ BACKSTOP_TOKENS: `${token}=operator` })).toThrow(/BACKSTOP_TOKENS: the operator token .* looks like a placeholder/);
  });

  it('accepts random tokens and the suffixed test tokens the suites use', () => {
    for (const token of ['3f9c2a71e8d04b6a95c1f07e2d8b4a63', 'kJ8s_2mQ-pX7vR4tZ9wY1nB6', 'test-operator-token-0000000001', 'desk1-token-0000000000']) {
      expect(placeholderReason(token)).toBeUndefined();
    }
    expect(tokensFromEnv({ BACKSTOP_TOKENS: '3f9c2a71e8d04b6a95c1f07e2d8b4a63=operator,kJ8s_2mQ-pX7vR4tZ9wY1nB6=desk:desk1' }).principals).toHaveLength(2);
  });
});
