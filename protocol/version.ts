/**
 * Wire protocol version, reported to clients in `auth_ok.protocol`. Within a version fields and
 * frame types may be added; none may be renamed, removed or change meaning.
 */
export const PROTOCOL_VERSION = 1

/**
 * SHA-256 of the wire schema (protocol/wire-schema.ts) as of this version. A wire change fails
 * test/protocol/version.test.ts until it is pinned again here: an addition re-pins; a rename,
 * a removal or a change of meaning also bumps PROTOCOL_VERSION.
 */
export const PROTOCOL_SCHEMA_SHA256 = '115128900270e2e81f80ef55871190c79af8a536977c3cacf76717baa3e5f9b7'
