/** Wire protocol version. Fields may be added within v1; none may be renamed or change meaning. */
export const PROTOCOL_VERSION = 1
