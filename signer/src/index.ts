/**
 * @hashwall/signer: the list maintainer's tool (`hashwall-signer`). The command line is main.ts (run by cli.ts, the
 * executable); these are the pieces behind it, for scripts and tests.
 */
export * from './errors.js';
export { processIo, type Io, type Terminal } from './cli-support.js';
export { main } from './main.js';
export * from './source.js';
export * from './lookup.js';
export { readCurrentIndex, presentFullSerials, writeReleaseFiles } from './release-dir.js';
export { acquireLock, writeFileAtomic, LOCK_FILE, TEMP_PREFIX } from './files.js';
export { loadSecretKey, loadSecretKeys, loadPublicKeys, loadListKey, PASSWORD_ENV } from './keys.js';
export { publish, DEFAULT_DELTAS, DEFAULT_INDEX_VALIDITY_HOURS, DEFAULT_MIN_POLL_SECONDS } from './commands/publish.js';
export type { PublishOptions, PublishReport } from './commands/publish.js';
export { heartbeat, type HeartbeatOptions, type HeartbeatReport } from './commands/heartbeat.js';
export { addSignatures, type AddSignatureOptions, type AddSignatureReport } from './commands/sign.js';
export { verifyRelease, releaseUrl, type VerifyOptions, type VerifyReport } from './commands/verify.js';
export { inspectFile, countKinds } from './commands/inspect.js';
export { checkTargets, keyForList } from './commands/check.js';
export { diffLists, type DiffResult } from './commands/diff.js';
export { writeSigningKeyPair, writeListKey, type KeygenResult } from './commands/keygen.js';
export { currentKeyring, keyringVersions, signingKeyring, addKeyring } from './keyring-dir.js';
export { draftKeyring, describeKeyring, DEFAULT_KEYRING_VALIDITY_DAYS } from './commands/keyring.js';
export { writeLogKey, loadLogConfig, loadLogKey, ReleaseLog, type LogConfig, type Appended } from './log.js';
export { auditReleaseLog, auditKeysFrom, type LogAuditKeys } from './log-audit.js';
