/** Codes is the table of disconnect codes the server sends. */
export declare const Codes: {
    Shutdown: number;
    SlowConsumer: number;
    InsufficientState: number;
    WriteTimeout: number;
    StaleConnection: number;
    InternalError: number;
    TokenExpired: number;
    RateLimited: number;
    BadRequest: number;
    MessageTooLarge: number;
    InvalidToken: number;
    Forbidden: number;
    /** DisconnectedByServer: a backend ended the user's connections (POST /api/disconnect); terminal. */
    DisconnectedByServer: number;
};
/** UnsubscribedByServer is the code of an `unsubscribed` frame: a backend ended the subscription (POST /api/unsubscribe). */
export declare const UnsubscribedByServer = 2000;
/**
 * canReconnect tells whether a disconnect with this code (and the frame's
 * optional `reconnect` flag) allows the client to reconnect.
 */
export declare function canReconnect(code: number, reconnect?: boolean): boolean;
