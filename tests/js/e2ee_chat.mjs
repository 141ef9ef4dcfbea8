// A real encrypted conversation on Myelin, driven by matrix-js-sdk and its Rust crypto.
//
// Usage: node e2ee_chat.mjs <homeserver base URL>
//
// Two users register (UIA with m.login.dummy), each client runs initRustCrypto() with an
// in-memory store, syncs and bootstraps cross-signing (UIA with m.login.password). Alice
// creates a room with m.room.encryption (megolm), invites Bob, Bob joins, each sends a
// message and each decrypts the other's, with no shield (the sender's device is known and
// cross-signed). A raw /messages fetch then checks that the server only ever stored
// m.room.encrypted ciphertext.
//
// Exits 0 on success. On failure it prints what went wrong, every HTTP request the clients
// made, and exits 1. Set MYELIN_JS_VERBOSE=1 to print requests and SDK logs as they happen.

// matrix-js-sdk 43 targets Node 22. On Node 20 `Promise.withResolvers` is missing and the
// sync loop stalls, so polyfill it before the SDK is loaded (hence the dynamic import below).
if (typeof Promise.withResolvers !== "function") {
    Promise.withResolvers = function withResolvers() {
        let resolve;
        let reject;
        const promise = new this((res, rej) => {
            resolve = res;
            reject = rej;
        });
        return { promise, resolve, reject };
    };
}

const sdk = await import("matrix-js-sdk");
const { EventShieldColour, EventShieldReason } = await import("matrix-js-sdk/lib/crypto-api/index.js");
// The SDK's deprecated global logger (used by a few modules, and the parent of their child
// loggers): route it into the same buffer as the per-client loggers below.
const { logger: globalSdkLogger } = await import("matrix-js-sdk/lib/logger.js");

const VERBOSE = !!process.env.MYELIN_JS_VERBOSE;
const OVERALL_TIMEOUT_MS = Number(process.env.MYELIN_JS_TIMEOUT_MS || 60_000);
const STEP_TIMEOUT_MS = 30_000;
const MEGOLM = "m.megolm.v1.aes-sha2";

const baseUrl = (process.argv[2] || "").replace(/\/+$/, "");
if (!baseUrl) {
    console.error("usage: node e2ee_chat.mjs <homeserver base URL>");
    process.exit(2);
}

// ---- request log -------------------------------------------------------------------------

const started = Date.now();
const requestLog = [];

function elapsed() {
    return `${((Date.now() - started) / 1000).toFixed(2)}s`;
}

function step(msg) {
    console.log(`[${elapsed()}] ${msg}`);
}

/** A fetch that records every request (who, method, path, status) for the failure report. */
function loggingFetch(who) {
    return async (input, init = {}) => {
        const url = new URL(input instanceof Request ? input.url : String(input));
        const method = (init.method || "GET").toUpperCase();
        const path = url.pathname + (url.search ? url.search.replace(/access_token=[^&]+/, "access_token=…") : "");
        const t0 = Date.now();
        try {
            const resp = await fetch(input, init);
            let line = `[${elapsed()}] ${who} ${method} ${path} -> ${resp.status} (${Date.now() - t0} ms)`;
            if (resp.status >= 400) {
                const body = await resp.clone().text().catch(() => "");
                line += ` ${body.slice(0, 300)}`;
            }
            requestLog.push(line);
            if (VERBOSE) console.log(line);
            return resp;
        } catch (err) {
            const line = `[${elapsed()}] ${who} ${method} ${path} -> network error ${err}`;
            requestLog.push(line);
            if (VERBOSE) console.log(line);
            throw err;
        }
    };
}

// ---- SDK logs: kept in memory, printed (the tail) on failure or live with MYELIN_JS_VERBOSE ----

const sdkLog = [];

/** A matrix-js-sdk Logger for one client; `getChild` adds a prefix as the SDK's own logger does. */
function makeLogger(prefix) {
    const emit = (level) => (...args) => {
        const text = args.map((a) => (a instanceof Error ? a.message : typeof a === "string" ? a : safeJson(a)))
            .join(" ");
        const line = `[${elapsed()}] ${level} ${prefix} ${text}`;
        sdkLog.push(line);
        if (VERBOSE) console.log(line);
    };
    return {
        trace: () => {},
        debug: emit("debug"),
        info: emit("info"),
        warn: emit("WARN"),
        error: emit("ERROR"),
        getChild: (child) => makeLogger(prefix + child),
    };
}

globalSdkLogger.methodFactory = (methodName) => function globalLog(...args) {
    makeLogger(this.prefix ? `${this.prefix}` : "[global]")[methodName === "warn" ? "warn" : methodName === "error"
        ? "error" : "debug"](...args);
};
globalSdkLogger.rebuild();

function safeJson(value) {
    try {
        return JSON.stringify(value);
    } catch {
        return String(value);
    }
}

// ---- failure handling --------------------------------------------------------------------

const clients = [];

function shutdown() {
    for (const c of clients) {
        try {
            c.stopClient();
        } catch {
            // already stopped
        }
    }
}

function fail(message) {
    console.error(`\nFAIL after ${elapsed()}: ${message}`);
    console.error(`\n${requestLog.length} HTTP requests made by the clients (4xx/5xx bodies shown):`);
    for (const line of requestLog) console.error("  " + line);
    const tail = sdkLog.slice(-80);
    console.error(`\nLast ${tail.length} of ${sdkLog.length} matrix-js-sdk log lines:`);
    for (const line of tail) console.error("  " + line);
    shutdown();
    process.exit(1);
}

let currentStep = "start";
const overallTimer = setTimeout(
    () => fail(`overall timeout of ${OVERALL_TIMEOUT_MS} ms exceeded (last step: ${currentStep})`),
    OVERALL_TIMEOUT_MS,
);

process.on("unhandledRejection", (err) => fail(`unhandled rejection: ${err?.stack || err}`));
process.on("uncaughtException", (err) => fail(`uncaught exception: ${err?.stack || err}`));

/** Resolve with `promise`, or fail the run with `what` after `ms`. */
async function within(what, promise, ms = STEP_TIMEOUT_MS) {
    currentStep = what;
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for: ${what}`)), ms);
    });
    try {
        return await Promise.race([promise, timeout]);
    } finally {
        clearTimeout(timer);
    }
}

function assert(cond, message) {
    if (!cond) throw new Error(`assertion failed: ${message}`);
}

// ---- steps -------------------------------------------------------------------------------

/** Register through user-interactive auth: a 401 offering m.login.dummy, then the dummy stage. */
async function register(localpart, password) {
    const anon = sdk.createClient({ baseUrl, fetchFn: loggingFetch(localpart), logger: makeLogger(`[${localpart}]`) });
    let session;
    try {
        await anon.registerRequest({ username: localpart, password, initial_device_display_name: localpart });
        throw new Error("registration without auth unexpectedly succeeded (expected a 401 UIA challenge)");
    } catch (err) {
        if (err.httpStatus !== 401) throw err;
        const flows = err.data?.flows || [];
        assert(flows.some((f) => (f.stages || []).includes("m.login.dummy")),
            `UIA flows offer m.login.dummy: ${JSON.stringify(flows)}`);
        session = err.data.session;
        assert(typeof session === "string" && session, `UIA 401 carries a session: ${JSON.stringify(err.data)}`);
    }
    const resp = await anon.registerRequest({
        username: localpart,
        password,
        initial_device_display_name: localpart,
        auth: { type: "m.login.dummy", session },
    });
    assert(resp.access_token && resp.device_id, `register returned a token and device: ${JSON.stringify(resp)}`);
    return resp;
}

/** A client with Rust crypto (in-memory store), synced to PREPARED. */
async function startClient(name, creds) {
    const client = sdk.createClient({
        baseUrl,
        userId: creds.user_id,
        deviceId: creds.device_id,
        accessToken: creds.access_token,
        fetchFn: loggingFetch(name),
        logger: makeLogger(`[${name}]`),
    });
    clients.push(client);
    await client.initRustCrypto({ useIndexedDB: false });
    const prepared = new Promise((resolve) => {
        client.on(sdk.ClientEvent.Sync, (state, _prev, data) => {
            if (state === sdk.SyncState.Prepared || state === sdk.SyncState.Syncing) resolve();
            if (state === sdk.SyncState.Error) {
                // The SDK retries on error; surface it but let the step timeout decide.
                console.error(`${name}: sync error: ${data?.error}`);
            }
        });
    });
    await client.startClient({ initialSyncLimit: 10 });
    await within(`${name} initial sync`, prepared);
    return client;
}

/** Wait until `client` sees `userId` with `membership` in `roomId`. */
function waitForMembership(client, roomId, userId, membership) {
    return new Promise((resolve) => {
        const check = () => {
            const m = client.getRoom(roomId)?.getMember(userId);
            if (m?.membership === membership) {
                client.off(sdk.RoomStateEvent.Members, check);
                resolve();
                return true;
            }
            return false;
        };
        if (!check()) client.on(sdk.RoomStateEvent.Members, check);
    });
}

/** Wait until Bob's client knows about an invite to `roomId`. */
function waitForInvite(client, roomId) {
    return new Promise((resolve) => {
        const check = () => {
            if (client.getRoom(roomId)?.getMyMembership() === "invite") {
                client.off(sdk.ClientEvent.Room, check);
                client.off(sdk.RoomEvent.MyMembership, check);
                resolve();
                return true;
            }
            return false;
        };
        if (!check()) {
            client.on(sdk.ClientEvent.Room, check);
            client.on(sdk.RoomEvent.MyMembership, check);
        }
    });
}

/**
 * Wait until `client` has decrypted a message from `senderId` in `roomId`; resolves with the
 * MatrixEvent. Decryption failures (e.g. the room key arriving after the message) are recorded
 * and waited out: the SDK retries when the key arrives and emits Event.decrypted again.
 */
function waitForDecryptedMessage(client, roomId, senderId, failures) {
    return new Promise((resolve) => {
        const consider = (ev) => {
            if (ev.getRoomId() !== roomId || ev.getSender() !== senderId) return;
            if (ev.getWireType() !== "m.room.encrypted") return;
            if (ev.isBeingDecrypted()) return;
            if (ev.isDecryptionFailure()) {
                failures.push(`${ev.getId()}: ${ev.decryptionFailureReason}`);
                return;
            }
            if (ev.getType() === "m.room.message") {
                client.off(sdk.MatrixEventEvent.Decrypted, consider);
                client.off(sdk.RoomEvent.Timeline, onTimeline);
                resolve(ev);
            }
        };
        const onTimeline = (ev) => consider(ev);
        client.on(sdk.MatrixEventEvent.Decrypted, consider);
        client.on(sdk.RoomEvent.Timeline, onTimeline);
        for (const ev of client.getRoom(roomId)?.getLiveTimeline().getEvents() || []) consider(ev);
    });
}

async function rawMessages(creds, roomId) {
    const url = `${baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`;
    const resp = await loggingFetch("raw")(url, { headers: { Authorization: `Bearer ${creds.access_token}` } });
    const text = await resp.text();
    assert(resp.status === 200, `raw /messages returned ${resp.status}: ${text}`);
    return { text, body: JSON.parse(text) };
}

// ---- the conversation --------------------------------------------------------------------

async function main() {
    const suffix = `${process.pid}${Date.now().toString(36)}`;
    const password = "correct-horse-battery-staple";

    step("registering alice and bob (UIA m.login.dummy)");
    const aliceCreds = await within("register alice", register(`alice${suffix}`, password));
    const bobCreds = await within("register bob", register(`bob${suffix}`, password));
    step(`registered ${aliceCreds.user_id} (${aliceCreds.device_id}) and ${bobCreds.user_id} (${bobCreds.device_id})`);

    step("starting clients with Rust crypto");
    const [alice, bob] = await Promise.all([startClient("alice", aliceCreds), startClient("bob", bobCreds)]);
    for (const [name, c] of [["alice", alice], ["bob", bob]]) {
        const crypto = c.getCrypto();
        assert(crypto, `${name} has a crypto backend`);
        step(`${name} crypto: ${crypto.getVersion()}`);
    }

    step("each bootstraps cross-signing (device signing keys behind UIA with m.login.password)");
    for (const [c, creds] of [[alice, aliceCreds], [bob, bobCreds]]) {
        await within(`${creds.user_id} bootstraps cross-signing`, c.getCrypto().bootstrapCrossSigning({
            authUploadDeviceSigningKeys: (makeRequest) => makeRequest({
                type: "m.login.password",
                identifier: { type: "m.id.user", user: creds.user_id },
                password,
            }),
        }));
        const status = await c.getCrypto().getCrossSigningStatus();
        assert(status.publicKeysOnDevice && status.privateKeysInSecretStorage === false,
            `cross-signing status of ${creds.user_id}: ${JSON.stringify(status)}`);
        const own = await c.getCrypto().getDeviceVerificationStatus(creds.user_id, creds.device_id);
        assert(own?.crossSigningVerified, `${creds.user_id}'s own device is cross-signed: ${JSON.stringify(own)}`);
    }

    step("alice creates an encrypted room and invites bob");
    const { room_id: roomId } = await within("createRoom", alice.createRoom({
        name: "secret chat",
        preset: sdk.Preset.PrivateChat,
        initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: MEGOLM } }],
    }));
    const bobInvited = waitForInvite(bob, roomId);
    await within("invite bob", alice.invite(roomId, bobCreds.user_id));
    await within("bob sees the invite", bobInvited);

    step("bob joins");
    const aliceSeesBob = waitForMembership(alice, roomId, bobCreds.user_id, "join");
    await within("bob joins", bob.joinRoom(roomId));
    await within("alice sees bob joined", aliceSeesBob);
    await within("bob's room is encrypted", (async () => {
        while (!(await bob.getCrypto().isEncryptionEnabledInRoom(roomId))) {
            await new Promise((r) => bob.once(sdk.ClientEvent.Sync, r));
        }
    })());
    assert(await alice.getCrypto().isEncryptionEnabledInRoom(roomId), "alice's client treats the room as encrypted");

    const aliceText = `Hello Bob, this is secret ${suffix}`;
    const bobText = `Hello Alice, got it ${suffix}`;
    const bobFailures = [];
    const aliceFailures = [];
    const bobGetsAlice = waitForDecryptedMessage(bob, roomId, aliceCreds.user_id, bobFailures);
    const aliceGetsBob = waitForDecryptedMessage(alice, roomId, bobCreds.user_id, aliceFailures);

    step("alice sends an encrypted message");
    const { event_id: aliceEventId } = await within("alice sends", alice.sendTextMessage(roomId, aliceText));
    step("bob sends an encrypted message");
    const { event_id: bobEventId } = await within("bob sends", bob.sendTextMessage(roomId, bobText));

    let atBob;
    let atAlice;
    try {
        atBob = await within("bob decrypts alice's message", bobGetsAlice);
        atAlice = await within("alice decrypts bob's message", aliceGetsBob);
    } catch (err) {
        throw new Error(`${err.message}\n  bob's decryption failures: ${JSON.stringify(bobFailures)}` +
            `\n  alice's decryption failures: ${JSON.stringify(aliceFailures)}`);
    }

    assert(atBob.getId() === aliceEventId, `bob decrypted alice's event ${aliceEventId}, got ${atBob.getId()}`);
    assert(atAlice.getId() === bobEventId, `alice decrypted bob's event ${bobEventId}, got ${atAlice.getId()}`);
    assert(atBob.getContent().body === aliceText,
        `bob decrypted ${JSON.stringify(atBob.getContent().body)}, alice sent ${JSON.stringify(aliceText)}`);
    assert(atAlice.getContent().body === bobText,
        `alice decrypted ${JSON.stringify(atAlice.getContent().body)}, bob sent ${JSON.stringify(bobText)}`);
    step(`bob decrypted alice's message: ${JSON.stringify(atBob.getContent().body)}`);
    step(`alice decrypted bob's message: ${JSON.stringify(atAlice.getContent().body)}`);

    for (const [who, ev, sender] of [["bob", atBob, aliceCreds], ["alice", atAlice, bobCreds]]) {
        assert(ev.isEncrypted(), `${who}'s copy of ${ev.getId()} arrived encrypted`);
        assert(ev.getWireContent().algorithm === MEGOLM, `${who}'s copy of ${ev.getId()} used ${MEGOLM}`);
        assert(ev.getSender() === sender.user_id, `${ev.getId()} was sent by ${sender.user_id}`);
        // The sender's device is known, cross-signed by its owner and matches the Olm/Megolm
        // keys: no shield (a red or grey one names what is wrong, e.g. UNKNOWN_DEVICE).
        const info = await (who === "bob" ? bob : alice).getCrypto().getEncryptionInfoForEvent(ev);
        assert(info && info.shieldColour === EventShieldColour.NONE,
            `${who} sees no shield on ${ev.getId()}, got colour ${EventShieldColour[info?.shieldColour]} ` +
            `reason ${EventShieldReason[info?.shieldReason]}`);
    }

    step("checking the server only holds ciphertext (raw /messages)");
    const { text, body } = await within("raw /messages", rawMessages(bobCreds, roomId));
    const byId = new Map(body.chunk.map((e) => [e.event_id, e]));
    for (const [eventId, plaintext] of [[aliceEventId, aliceText], [bobEventId, bobText]]) {
        const wire = byId.get(eventId);
        assert(wire, `/messages returns ${eventId}; got ${[...byId.keys()].join(", ")}`);
        assert(wire.type === "m.room.encrypted", `${eventId} on the wire is m.room.encrypted, got ${wire.type}`);
        assert(wire.content.algorithm === MEGOLM,
            `${eventId} on the wire uses ${MEGOLM}: ${JSON.stringify(wire.content)}`);
        assert(typeof wire.content.ciphertext === "string" && wire.content.ciphertext.length > 0,
            `${eventId} carries megolm ciphertext`);
        assert(!text.includes(plaintext),
            `plaintext ${JSON.stringify(plaintext)} appears in the raw /messages response`);
    }
    assert(body.chunk.some((e) => e.type === "m.room.encryption"),
        "the room's m.room.encryption state is in /messages");

    step(`PASS: two matrix-js-sdk clients exchanged and decrypted megolm messages ` +
        `(${requestLog.length} HTTP requests)`);
    if (VERBOSE) for (const line of requestLog) console.log("  " + line);
}

try {
    await main();
} catch (err) {
    fail(err?.stack || String(err));
}
clearTimeout(overallTimer);
shutdown();
process.exit(0);
