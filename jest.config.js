/**
 * Jest runs the agent and CLI tests. They drive the real bundle and real processes under
 * the preload library, so the artifacts must be built first (`make native addon agent`).
 */
module.exports = {
  testEnvironment: 'node',
  testMatch: ['<rootDir>/src/__tests__/**/*.test.ts'],
  transform: {
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.agent.json' }]
  },
  testTimeout: 30000
};
