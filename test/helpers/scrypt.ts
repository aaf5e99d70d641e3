import type { ScryptParams } from '../../src/auth/passwords.ts'

/**
 * The scrypt cost of the passwords suites make: the same code at 1/32 of the default's work, so
 * the hundreds of accounts the suites create do not each cost a full hash. The default cost
 * runs in test/auth/passwords.test.ts and in every hub started as a process.
 */
export const TEST_SCRYPT: ScryptParams = { ln: 10, r: 8, p: 1 }
