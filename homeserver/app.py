"""Composition root: builds every object once and hands each what it needs.

Only this module (and __main__) imports from every package. `build()` is
used by `python -m homeserver`, by the in-process tests (with a fake
reactor and an inline database runner) and by CLI tools.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from homeserver.config import HomeserverConfig
from homeserver.handlers.auth import AuthHandler
from homeserver.http.router import Router
from homeserver.http.site import MyelinSite, RootResource
from homeserver.keys import load_or_create_signing_key
from homeserver.storage.database import Database, InlineRunner, ThreadRunner, make_engine
from homeserver.storage.prepare import prepare_database
from homeserver.storage.stores.events import EventStore
from homeserver.storage.stores.rooms import MembershipStore, RoomStore
from homeserver.storage.stores.state import StateStore
from homeserver.storage.stores.users import UserStore
from homeserver.streams.change_cache import StreamChangeCache
from homeserver.streams.ids import SimpleIdGenerator, StreamIdGenerator
from homeserver.streams.notifier import Notifier
from homeserver.streams.tokens import StreamToken
from homeserver.util.clock import Clock

logger = logging.getLogger(__name__)


class _Step:
    """Logs a start-up step with its duration."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        self.start = time.monotonic()

    def __exit__(self, *exc: Any) -> None:
        logger.info("start-up: %s in %.3fs", self.name, time.monotonic() - self.start)


class HomeServer:
    """Everything `build()` made, for __main__, tests and tools to reach."""

    def __init__(self) -> None:
        self.config: HomeserverConfig
        self.reactor: Any
        self.clock: Clock
        self.db: Database
        self.router: Router
        self.resource: RootResource
        self.server_name: str
        self.signing_key: Any

    def make_site(self, max_body_size: int | None = None) -> MyelinSite:
        return MyelinSite(self.resource, max_body_size or max(self.config.media.max_upload_size, 10 * 1024 * 1024),
                          reactor=self.reactor)


def build(config: HomeserverConfig, reactor: Any, *, inline_db: bool = False) -> HomeServer:
    """Build the homeserver.

    Args:
        config: the loaded configuration.
        reactor: the Twisted reactor (a MemoryReactorClock in tests).
        inline_db: run database work synchronously (in-process tests).
    """
    hs = HomeServer()
    hs.config = config
    hs.reactor = reactor
    hs.clock = clock = Clock(reactor)
    hs.server_name = server_name = config.server.server_name

    with _Step("signing key"):
        hs.signing_key = load_or_create_signing_key(config.keys.signing_key_path)

    with _Step("database"):
        engine = make_engine(config.database.name, dict(config.database.args))
        if inline_db:
            runner: Any = InlineRunner()
        else:
            size = 1 if engine.name == "sqlite" else int(config.database.args.get("cp_max", 10))
            runner = ThreadRunner(reactor, size)
        hs.db = db = Database(engine, runner)
        prepare_database(db)
    # CPU-heavy work (password hashing, thumbnails) runs here, off the reactor.
    hs.cpu_runner = InlineRunner() if inline_db else ThreadRunner(reactor, 2, name="cpu")

    with _Step("stores"):
        users = UserStore(db)
        users.init_blocking()
        rooms = RoomStore(db)
        events = EventStore(db, rooms)
        state = StateStore(db)
        members = MembershipStore(db)
        max_stream, min_stream = events.get_max_stream_ordering_blocking()
        event_ids = StreamIdGenerator("events", max_stream)
        backfill_ids = StreamIdGenerator("backfill", min_stream, step=-1)
        state_group_ids = SimpleIdGenerator(state.get_max_group_blocking())
        room_changes = StreamChangeCache("room_events", max_stream)
        member_changes = StreamChangeCache("membership_changes", max_stream)
    hs.users, hs.rooms, hs.events, hs.state, hs.members = users, rooms, events, state, members
    hs.event_ids, hs.backfill_ids, hs.state_group_ids = event_ids, backfill_ids, state_group_ids
    hs.room_changes, hs.member_changes = room_changes, member_changes

    # Every stream's current position; other streams register themselves below.
    stream_positions: dict[str, Any] = {"events": event_ids.get_current}

    def current_token() -> StreamToken:
        return StreamToken(**{name: fn() for name, fn in stream_positions.items()})

    hs.stream_positions = stream_positions
    hs.notifier = notifier = Notifier(clock, current_token, config.myelin.ephemeral_wake_delay)

    hs.auth = auth = AuthHandler(users, clock)
    hs.router = router = Router()

    # ---- client API: server discovery and capabilities ----------------------
    from homeserver.api.client import versions as versions_api

    versions_api.register(router, config)

    # ---- accounts (registration, login, devices, UIA) ----------------------
    from homeserver.api.admin import register as admin_register_api
    from homeserver.api.client import account as account_api, devices as devices_api, login as login_api
    from homeserver.handlers.account import AccountHandler
    from homeserver.handlers.devices import DeviceHandler
    from homeserver.handlers.login import LoginHandler
    from homeserver.handlers.passwords import PasswordHandler
    from homeserver.handlers.registration import RegistrationHandler
    from homeserver.handlers.ui_auth import UIAuthHandler

    hs.passwords = passwords = PasswordHandler(config.registration, hs.cpu_runner)
    hs.devices = DeviceHandler(users)
    hs.login = LoginHandler(server_name, users, clock, passwords, hs.devices, config.registration,
                            config.ratelimiting)
    hs.ui_auth = UIAuthHandler(users, clock, hs.login)
    hs.registration = RegistrationHandler(server_name, users, clock, passwords, hs.login, hs.ui_auth,
                                          config.registration, config.ratelimiting)
    hs.account = AccountHandler(server_name, users, clock, passwords, hs.devices, hs.ui_auth)
    account_api.register(router, hs.registration, hs.account)
    login_api.register(router, hs.login, auth.authenticate)
    devices_api.register(router, hs.devices, hs.ui_auth)
    admin_register_api.register(router, hs.registration)

    # ---- profiles, account data, filters, tags ----------------------------
    from homeserver.api.client import account_data as account_data_api
    from homeserver.api.client import filter as filter_api
    from homeserver.api.client import profile as profile_api
    from homeserver.api.client import tags as tags_api
    from homeserver.handlers.account_data import AccountDataHandler
    from homeserver.handlers.filtering import FilteringHandler
    from homeserver.handlers.profile import ProfileHandler
    from homeserver.storage.stores.account_data import AccountDataStore
    from homeserver.storage.stores.filters import FilterStore
    from homeserver.storage.stores.profiles import ProfileStore

    with _Step("account data stream"):
        hs.account_data = account_data_store = AccountDataStore(db)
        hs.account_data_ids = account_data_ids = StreamIdGenerator(
            "account_data", account_data_store.get_max_stream_id_blocking())
        account_data_store.set_stream_ids(account_data_ids)
    stream_positions["account_data"] = account_data_ids.get_current
    hs.account_data_handler = AccountDataHandler(account_data_store, account_data_ids, notifier)
    hs.filter_store = filter_store = FilterStore(db)
    hs.filtering = FilteringHandler(filter_store)
    hs.profiles = ProfileStore(db)
    hs.profile_handler = ProfileHandler(hs.profiles, users, members, server_name, config.registration,
                                        config.server)
    profile_api.register(router, hs.profile_handler)
    account_data_api.register(router, hs.account_data_handler)
    tags_api.register(router, hs.account_data_handler)
    filter_api.register(router, hs.filtering)
    # ---- rooms, events, membership, messages ------------------------------
    from homeserver.api.client import rooms as rooms_api
    from homeserver.events.builder import EventBuilder
    from homeserver.events.persist import EventPersister
    from homeserver.events.serialize import EventSerializer
    from homeserver.handlers.membership import MembershipHandler
    from homeserver.handlers.room_creation import RoomCreationHandler
    from homeserver.handlers.room_reads import RoomReadHandler
    from homeserver.handlers.send import EventSender
    from homeserver.handlers.visibility import VisibilityHandler
    from homeserver.state.heads import RoomHeads
    from homeserver.storage.stores.rooms import VisibilityStore
    from homeserver.util.ratelimit import Ratelimiter

    rl = config.ratelimiting
    hs.heads = heads = RoomHeads(db, state)
    hs.builder = builder = EventBuilder(server_name, hs.signing_key, clock, events, state_group_ids)
    hs.persister = persister = EventPersister(db, clock, events, state, rooms, members, heads, event_ids,
                                              room_changes, member_changes, notifier)
    hs.serializer = serializer = EventSerializer(events, clock)
    persister.add_listener(serializer.on_events_persisted)
    hs.visibility = visibility = VisibilityHandler(VisibilityStore(db), members)
    persister.add_listener(visibility.on_events_persisted)
    hs.sender = sender = EventSender(builder, persister, heads, events, rooms,
                                     Ratelimiter("rc_message", rl.rc_message, clock))
    hs.membership = membership = MembershipHandler(
        server_name, sender, rooms, members, getattr(hs, "profile_handler", None),
        Ratelimiter("rc_joins.local", rl.rc_joins.local, clock),
        Ratelimiter("rc_invites.per_user", rl.rc_invites.per_user, clock))
    if hasattr(hs, "profile_handler"):
        hs.profile_handler.profile_change_listeners.append(membership.update_profile_in_rooms)
    hs.room_creation = RoomCreationHandler(server_name, clock, builder, sender, rooms, membership,
                                           config.server.default_room_version,
                                           Ratelimiter("rc_room_creation", rl.rc_room_creation, clock))
    hs.room_reads = RoomReadHandler(events, state, rooms, members, visibility, serializer, event_ids,
                                    notifier.current_token)
    from homeserver.handlers.membership import MembershipLifecycle

    lifecycle = MembershipLifecycle(server_name, membership, members, rooms, config.registration.auto_join_rooms,
                                    config.registration.autocreate_auto_join_rooms, hs.room_creation)
    hs.registration.on_register.append(lifecycle.on_register)
    hs.account.on_deactivate.append(lifecycle.on_deactivate)
    from homeserver.handlers.account_moderation import AccountModerationHandler

    hs.account_moderation = AccountModerationHandler(users, events, server_name)  # locks, suspensions
    rooms_api.register(router, creation=hs.room_creation, membership=membership, sender=sender,
                       reads=hs.room_reads, rooms=rooms, members=members, server_name=server_name,
                       moderation=hs.account_moderation)

    # ---- rooms: directory, aliases, spaces, relations ------------------------
    from homeserver.api.client import directory as directory_api
    from homeserver.api.client import relations as relations_api
    from homeserver.api.client import room_extras as room_extras_api
    from homeserver.handlers.directory import DirectoryHandler
    from homeserver.handlers.hierarchy import SpaceHierarchyHandler
    from homeserver.handlers.relations import RelationsHandler
    from homeserver.handlers.room_summary import InitialSyncHandler, RoomStatsUpdater, RoomSummaryHandler
    from homeserver.handlers.room_upgrade import RoomUpgradeHandler
    from homeserver.storage.stores.directory import DirectoryStore

    hs.directory_store = directory_store = DirectoryStore(db)
    with _Step("room stats catch-up"):
        rebuilt = directory_store.catch_up_blocking(event_ids.get_current())
        if rebuilt:
            logger.info("rebuilt the stats of %d rooms", rebuilt)
    hs.room_stats = RoomStatsUpdater(directory_store, event_ids.get_current)
    persister.add_listener(hs.room_stats.on_events_persisted)
    hs.room_summaries = RoomSummaryHandler(server_name, directory_store, hs.room_stats, rooms, members)
    hs.directory = DirectoryHandler(server_name, rooms, members, state, directory_store, hs.room_summaries, sender)
    hs.hierarchy = SpaceHierarchyHandler(hs.room_summaries, directory_store, events, members)
    hs.room_upgrades = RoomUpgradeHandler(server_name, hs.room_creation, sender, rooms, members, state, events,
                                          directory_store)
    hs.relations = RelationsHandler(events, rooms, members, state, visibility, serializer)
    hs.initial_sync = InitialSyncHandler(hs.room_reads, events, state, members, directory_store, visibility,
                                         serializer, getattr(hs, "account_data", None), notifier.current_token)
    directory_api.register(router, hs.directory, config.server.allow_public_rooms_without_auth)
    room_extras_api.register(router, summaries=hs.room_summaries, hierarchy=hs.hierarchy,
                             upgrades=hs.room_upgrades, relations=hs.relations, snapshots=hs.initial_sync)
    relations_api.register(router, hs.relations)

    # ---- search, user directory, reports, misc ----------------------------------
    from homeserver.api.client import event_stream as event_stream_api
    from homeserver.api.client import reports as reports_api
    from homeserver.api.client import search as search_api
    from homeserver.api.client import threepids as threepids_api
    from homeserver.api.client import user_directory as user_directory_api
    from homeserver.api.client import voip as voip_api
    from homeserver.api.client import whois as whois_api
    from homeserver.handlers.event_stream import EventStreamHandler
    from homeserver.handlers.reports import ReportsHandler
    from homeserver.handlers.search import SearchHandler, SearchIndexer
    from homeserver.handlers.threepids import RegistrationTokenHandler, ThreepidHandler
    from homeserver.handlers.user_directory import UserDirectoryHandler
    from homeserver.handlers.voip import TurnServerHandler
    from homeserver.handlers.whois import WhoisHandler
    from homeserver.storage.stores.event_stream import EventStreamStore
    from homeserver.storage.stores.reports import ReportStore
    from homeserver.storage.stores.search import SearchStore
    from homeserver.storage.stores.user_directory import UserDirectoryStore
    from homeserver.util.ratelimit import Ratelimiter

    hs.search_store = search_store = SearchStore(db)
    hs.user_directory_store = user_directory_store = UserDirectoryStore(db, server_name)
    hs.report_store = ReportStore(db)
    with _Step("search index and user directory catch-up"):
        indexed = search_store.catch_up_blocking(event_ids.get_current())
        if indexed:
            logger.info("indexed %d events for search", indexed)
        if user_directory_store.catch_up_blocking(event_ids.get_current()) == "built":
            logger.info("built the user directory")
        hs.report_store.init_blocking()
    hs.search_indexer = SearchIndexer(search_store, event_ids.get_current, clock)
    persister.add_stage("search_index", hs.search_indexer.write_txn)  # in the events' own transaction
    hs.search = SearchHandler(search_store, events, state, members, visibility, serializer)
    hs.user_directory = UserDirectoryHandler(
        user_directory_store, config.user_directory,
        Ratelimiter("rc_user_directory", config.ratelimiting.rc_user_directory, clock), event_ids.get_current)
    persister.add_listener(hs.user_directory.on_events_persisted)
    hs.profile_handler.profile_change_listeners.append(hs.user_directory.on_profile_change)
    hs.registration.on_register.append(hs.user_directory.on_register)
    hs.account.on_deactivate.append(hs.user_directory.on_deactivate)
    hs.reports = ReportsHandler(hs.report_store, events, rooms, members, visibility, users, clock,
                                Ratelimiter("rc_reports", config.ratelimiting.rc_reports, clock), server_name)
    hs.event_stream = EventStreamHandler(EventStreamStore(db), events, members, visibility, serializer, notifier,
                                         room_changes, clock)
    hs.registration_tokens = RegistrationTokenHandler(
        config.registration, Ratelimiter("rc_registration_token_validity",
                                         config.ratelimiting.rc_registration_token_validity, clock))
    search_api.register(router, hs.search)
    user_directory_api.register(router, hs.user_directory)
    reports_api.register(router, hs.reports)
    event_stream_api.register(router, hs.event_stream)
    voip_api.register(router, TurnServerHandler(config.voip, clock))
    whois_api.register(router, WhoisHandler(users, server_name))
    threepids_api.register(router, ThreepidHandler(), hs.registration_tokens)

    # ---- sync ---------------------------------------------------------------
    from homeserver.api.client import sync as sync_api
    from homeserver.sync.handler import SyncHandler

    hs.sync_handler = SyncHandler(clock, notifier, events, state, members, visibility, serializer,
                                  room_changes, member_changes, getattr(hs, "account_data", None))
    hs.sync_handler.ephemeral_linger_ms = config.myelin.ephemeral_wake_delay
    hs.sync_handler.max_timeline_limit = config.server.filter_timeline_limit
    sync_api.register(router, hs.sync_handler, getattr(hs, "filter_store", None))

    # ---- typing, receipts, presence ------------------------------------------
    from homeserver.api.client import presence as presence_api
    from homeserver.api.client import receipts as receipts_api
    from homeserver.api.client import typing as typing_api
    from homeserver.handlers.delivery import DeliveryReceipts
    from homeserver.handlers.presence import PresenceHandler
    from homeserver.handlers.receipts import ReceiptsHandler
    from homeserver.handlers.typing import TypingHandler
    from homeserver.handlers.unread import UnreadCounts
    from homeserver.storage.stores.presence import PresenceStore
    from homeserver.storage.stores.push_summary import PushSummaryStore
    from homeserver.storage.stores.receipts import ReceiptStore
    from homeserver.sync.ephemeral import ReceiptsSyncExtension, TypingSyncExtension
    from homeserver.sync.presence import PresenceSyncExtension
    from homeserver.sync.unread import UnreadSyncExtension
    from homeserver.util.ratelimit import Ratelimiter
    from homeserver.util.tasks import run_in_background
    from twisted.internet import defer

    with _Step("receipts and presence streams"):
        receipt_store, presence_store = ReceiptStore(db), PresenceStore(db)
        hs.receipt_ids = StreamIdGenerator("receipts", receipt_store.get_max_stream_id_blocking())
        receipt_store.start_recent(hs.receipt_ids.get_current())
        hs.receipt_store = receipt_store
        hs.presence_ids = StreamIdGenerator("presence", presence_store.get_max_stream_id_blocking())
    hs.typing = TypingHandler(clock, members, notifier)
    stream_positions["typing"] = hs.typing.get_current_position
    stream_positions["receipts"] = hs.receipt_ids.get_current
    stream_positions["presence"] = hs.presence_ids.get_current
    hs.unread = UnreadCounts(PushSummaryStore(db), receipt_store, events, clock, server_name)
    # Counts and push actions commit in the events' own transaction.
    persister.add_stage("unread_counts", hs.unread.write_batch_txn, hs.unread.prepare_batch,
                        hs.unread.batch_committed)
    persister.add_listener(hs.unread.on_events_persisted)
    hs.receipts = ReceiptsHandler(receipt_store, hs.receipt_ids, events, members, notifier, clock,
                                  hs.account_data_handler, hs.account_data, hs.unread,
                                  config.myelin.delivery_receipts.enabled, hs.account_data_ids.get_current)
    # Queued delivered receipts are written before the database pool stops.
    reactor.addSystemEventTrigger("before", "shutdown",
                                  lambda: defer.ensureDeferred(hs.receipts.flush_delivered()))
    hs.presence = PresenceHandler(config.presence, presence_store, hs.presence_ids, members, users, notifier,
                                  clock, server_name, Ratelimiter("rc_presence.per_user",
                                                                  config.ratelimiting.rc_presence.per_user, clock))
    hs.delivery = DeliveryReceipts(hs.receipts, events)
    for listener in (hs.typing.on_events_persisted, hs.presence.on_events_persisted):
        persister.add_listener(listener)
    hs.typing.activity_listeners.append(hs.presence.bump_active)
    hs.receipts.activity_listeners.append(hs.presence.bump_active)
    hs.sync_handler.on_sync_listeners.append(hs.presence.on_sync)
    hs.sync_handler.on_sync_end_listeners.append(hs.presence.on_sync_end)
    hs.sync_handler.response_listeners.extend([hs.delivery.on_sync_response, hs.presence.on_sync_response])
    # Unread counts last: they go on every room the other extensions put in the response.
    hs.sync_handler.extensions.extend([
        TypingSyncExtension(hs.typing), ReceiptsSyncExtension(hs.receipts, receipt_store),
        PresenceSyncExtension(hs.presence, presence_store, config.presence.include_offline_users_on_sync),
        UnreadSyncExtension(hs.unread, receipt_store, room_changes, hs.receipts.read_changes)])
    typing_api.register(router, hs.typing)
    receipts_api.register(router, hs.receipts)
    presence_api.register(router, hs.presence)
    run_in_background("presence_start", hs.presence.start)

    # ---- push rules, pushers, notifications (homeserver/push/README.md) -------
    from homeserver.api.client import notifications as notifications_api
    from homeserver.api.client import push_rules as push_rules_api
    from homeserver.api.client import pushers as pushers_api
    from homeserver.handlers.notifications import PRUNE_INTERVAL_S, NotificationsHandler
    from homeserver.handlers.push_rules import PushRulesHandler, PushRulesSyncExtension
    from homeserver.handlers.pushers import PushersHandler
    from homeserver.push.evaluator import BulkPushRuleEvaluator
    from homeserver.push.gateway import GatewayClient
    from homeserver.util.ip_ranges import AddressRules
    from homeserver.push.notification import NotificationBuilder
    from homeserver.push.pusher_pool import PusherPool
    from homeserver.storage.stores.push_actions import PushActionsStore
    from homeserver.storage.stores.push_rules import PushRulesStore
    from homeserver.storage.stores.push_summary import PushSummaryStore
    from homeserver.storage.stores.pushers import PusherStore

    with _Step("push rules stream"):
        push_rules_store = PushRulesStore(db)
        hs.push_rules_ids = StreamIdGenerator("push_rules", push_rules_store.get_max_stream_id_blocking())
        push_rules_store.set_stream_ids(hs.push_rules_ids)
    stream_positions["push_rules"] = hs.push_rules_ids.get_current
    hs.push_rules = PushRulesHandler(push_rules_store, hs.push_rules_ids, notifier)
    hs.push_evaluator = BulkPushRuleEvaluator(hs.push_rules, members, state, events, server_name)
    hs.unread.evaluator = hs.push_evaluator  # unread counts come from push rule evaluation
    hs.account_data_handler.global_readers["m.push_rules"] = hs.push_rules.get_push_rules
    hs.sync_handler.extensions.append(PushRulesSyncExtension(hs.push_rules))
    push_actions_store, pusher_store, badge_store = PushActionsStore(db), PusherStore(db), PushSummaryStore(db)
    hs.notifications = NotificationsHandler(push_actions_store, events, serializer, clock)
    hs.pushers = PushersHandler(pusher_store, clock, event_ids.get_current)
    hs.push_gateway = GatewayClient(reactor, AddressRules(config.federation.ip_range_blacklist,
                                                          config.federation.ip_range_whitelist))

    async def _badge(user_id: str) -> int:
        return await badge_store.get_badge_count(user_id, config.push.group_unread_count_by_room)

    hs.pusher_pool = PusherPool(pusher_store, push_actions_store, _badge, events,
                                NotificationBuilder(events, state, config.push.include_content), hs.push_gateway,
                                clock, config.push)
    hs.unread.counted_listeners.append(hs.pusher_pool.on_counted)
    hs.unread.read_listeners.append(hs.pusher_pool.on_read)
    hs.pushers.added_listeners.append(hs.pusher_pool.on_pusher_added)
    hs.pushers.removed_listeners.append(hs.pusher_pool.on_pusher_removed)
    if config.push.suppress_while_active:  # the pool follows syncs to know who is active
        hs.sync_handler.on_sync_listeners.append(hs.pusher_pool.on_sync)
        hs.sync_handler.on_sync_end_listeners.append(hs.pusher_pool.on_sync_end)
    hs.devices.device_change_callbacks.append(hs.pushers.on_device_change)
    hs.account.on_deactivate.append(hs.pushers.on_deactivate)
    push_rules_api.register(router, hs.push_rules)
    pushers_api.register(router, hs.pushers)
    notifications_api.register(router, hs.notifications)
    if config.push.enabled:
        run_in_background("pusher_pool_start", hs.pusher_pool.start)
    hs.push_actions_pruning = clock.looping_call(
        lambda: run_in_background("prune_push_actions", hs.notifications.prune), PRUNE_INTERVAL_S)

    # ---- to-device, device lists, e2e keys ---------------------------------
    from homeserver.api.client import key_backup as key_backup_api
    from homeserver.api.client import keys as keys_api
    from homeserver.api.client import to_device as to_device_api
    from homeserver.handlers.cross_signing import CrossSigningHandler
    from homeserver.handlers.device_lists import DeviceListHandler
    from homeserver.handlers.e2e_keys import E2eKeysHandler
    from homeserver.handlers.key_backup import KeyBackupHandler
    from homeserver.handlers.to_device import ToDeviceHandler
    from homeserver.storage.stores.device_lists import DeviceListStore
    from homeserver.storage.stores.e2e_keys import E2eKeysStore
    from homeserver.storage.stores.key_backup import KeyBackupStore
    from homeserver.storage.stores.to_device import ToDeviceStore
    from homeserver.sync.e2e import E2eSyncExtension
    from homeserver.sync.to_device import ToDeviceSyncExtension

    with _Step("to-device and device-list streams"):
        to_device_store, device_list_store = ToDeviceStore(db), DeviceListStore(db)
        e2e_store = E2eKeysStore(db, device_list_store)
        hs.to_device_ids = StreamIdGenerator("to_device", to_device_store.get_max_stream_id_blocking())
        hs.device_list_ids = StreamIdGenerator("device_lists", device_list_store.get_max_stream_id_blocking())
        otk_seq = SimpleIdGenerator(e2e_store.get_max_one_time_key_seq_blocking())
    stream_positions["to_device"] = hs.to_device_ids.get_current
    stream_positions["device_lists"] = hs.device_list_ids.get_current
    hs.to_device = ToDeviceHandler(to_device_store, hs.to_device_ids, notifier, clock, server_name)
    hs.device_lists = DeviceListHandler(device_list_store, hs.device_list_ids, notifier, members, member_changes,
                                        room_changes, event_ids.get_current())
    persister.add_listener(hs.device_lists.on_events_persisted)
    hs.e2e_keys = E2eKeysHandler(e2e_store, hs.device_lists, clock, server_name, otk_seq)
    hs.cross_signing = CrossSigningHandler(e2e_store, hs.device_lists, hs.ui_auth, users)
    hs.cross_signing.extend_key_queries(hs.e2e_keys)
    hs.key_backup = KeyBackupHandler(KeyBackupStore(db))

    async def _on_device_change(user_id: str, device_ids: list[str], deleted: bool) -> None:
        if deleted:
            await hs.to_device.on_devices_deleted(user_id, device_ids)
            await hs.e2e_keys.on_devices_deleted(user_id, device_ids)
        else:
            await hs.device_lists.notify_changed([user_id])

    hs.devices.device_change_callbacks.append(_on_device_change)
    hs.sync_handler.extensions.append(ToDeviceSyncExtension(hs.to_device))
    hs.sync_handler.extensions.append(E2eSyncExtension(hs.e2e_keys, hs.device_lists))
    to_device_api.register(router, hs.to_device)
    keys_api.register(router, hs.e2e_keys, hs.cross_signing, hs.device_lists, notifier.current_token,
                      members.get_rooms_for_user)
    key_backup_api.register(router, hs.key_backup)

    # ---- observability: metrics, health (docs/observability.md) ---------------
    from homeserver.observability import health as health_api
    from homeserver.observability.metrics import Metrics

    # Always present so components can register metrics; hooked into the hot
    # paths only when metrics are enabled.
    hs.metrics = metrics = Metrics(config.metrics.enable_metrics, reactor)
    health_api.register(router, db)
    if metrics.enabled:
        hs.request_observer = metrics.observe_request
        db.set_hooks(metrics.observe_txn, metrics.observe_pool_wait)
        hs.sync_handler.response_time_observer = metrics.observe_sync
        metrics.watch(notifier=notifier, persister=persister, send_linearizer=hs.sender.room_linearizer,
                      in_flight=lambda: hs.resource.in_flight, stream_positions=stream_positions)

    # ---- media repository (docs/media.md) -------------------------------------
    # Mounted here unless it runs as its own process (python -m media_repo).
    hs.media = None
    if config.media.enable_media_repo:
        from homeserver.util.ratelimit import Ratelimiter
        from media_repo.repository import build_media_repository

        with _Step("media repository"):
            hs.media = build_media_repository(
                server_name=server_name, config=config.media, router=router, db=db, clock=clock, reactor=reactor,
                io_runner=InlineRunner() if inline_db else ThreadRunner(reactor, 4, name="media-io"),
                cpu_runner=hs.cpu_runner,
                create_limiter=Ratelimiter("rc_media_create", config.ratelimiting.rc_media_create, clock))

    # ---- retention and status posts (docs/retention.md, docs/status_posts.md) --
    from homeserver.api.admin import test_clock as test_clock_api
    from homeserver.api.client import status_posts as status_posts_api
    from homeserver.handlers.retention import (STORIES_ROOM_TYPE, EventMediaIndexer, RetentionHandler,
                                               RetentionPolicies)
    from homeserver.handlers.status_posts import StatusAudience, StatusExpiry, StatusFeed, StatusPostsHandler
    from homeserver.storage.stores.purge import PurgeStore
    from homeserver.storage.stores.retention import RetentionStore

    if config.myelin.testing.enable_clock_control:  # tests only: see util/clock.py
        clock.enable_control()
        test_clock_api.register(router, clock)
    hs.retention_store = retention_store = RetentionStore(db, server_name)
    with _Step("event media catch-up, retention policies"):
        if retention_store.catch_up_event_media_blocking(event_ids.get_current()):
            logger.info("indexed the media of earlier events")
        status_rooms = retention_store.get_status_rooms_blocking()
        rooms_with_policies = retention_store.get_rooms_with_policies_blocking(STORIES_ROOM_TYPE)
    hs.retention_policies = policies = RetentionPolicies(config.retention, config.myelin.status_posts, state,
                                                         events, clock, rooms_with_policies)
    hs.retention = RetentionHandler(config.retention, policies, retention_store,
                                    PurgeStore(db, events, hs.search_store, server_name), clock,
                                    hs.media.retention if hs.media is not None else None)
    hs.event_media_indexer = EventMediaIndexer(retention_store, server_name, event_ids.get_current, clock)
    for listener in (policies.on_events_persisted, hs.event_media_indexer.on_events_persisted):
        persister.add_listener(listener)
    sender.pre_send_checks.append(policies.check_retention_event)
    if policies.active:
        visibility.expired_filter = policies
        if getattr(hs, "notifications", None) is not None:
            hs.notifications.expired_filter = policies
    if config.myelin.status_posts.enabled:
        hs.status_expiry = StatusExpiry(retention_store, sender, hs.retention, policies, clock, server_name,
                                        status_rooms)
        persister.add_listener(hs.status_expiry.on_events_persisted)
        hs.retention.pre_purge_hooks.append(hs.status_expiry.expire_room)
        audience = StatusAudience(retention_store, members, membership)
        hs.status_posts = StatusPostsHandler(config.myelin.status_posts, retention_store, events, hs.room_creation,
                                             sender, audience, hs.retention, policies, clock)
        hs.status_feed = StatusFeed(retention_store, events, receipt_store, policies, visibility, clock)
        status_posts_api.register(router, hs.status_posts, hs.status_feed)
    hs.event_media_indexer.start()
    hs.retention.start()
    if config.myelin.status_posts.enabled:
        hs.status_expiry.start()

    # ---- account moderation, login tokens, third-party lookups (docs/accounts.md)
    from homeserver.api.admin import suspend as admin_suspend_api
    from homeserver.api.client import account_moderation as account_moderation_api
    from homeserver.api.client import login as login_token_api
    from homeserver.api.client import thirdparty as thirdparty_api
    from homeserver.config.ratelimiting import RateLimit
    from homeserver.handlers.login_token import LoginTokenHandler
    from homeserver.handlers.thirdparty import ThirdPartyLookupHandler
    from homeserver.storage.stores.login_tokens import LoginTokenStore
    from homeserver.util.ratelimit import Ratelimiter

    account_moderation_api.register(router, hs.account_moderation)
    admin_suspend_api.register(router, hs.account_moderation)
    # One token a minute per user, as the spec suggests (Synapse's fixed limit).
    hs.login_tokens = LoginTokenHandler(
        LoginTokenStore(db), clock, hs.ui_auth, config.registration.login_via_existing_session,
        Ratelimiter("login_get_token", RateLimit(1 / 60, 1), clock, config.ratelimiting.ratelimiting_enabled))
    hs.login.login_tokens = hs.login_tokens
    login_token_api.register_get_token(router, hs.login_tokens)
    hs.thirdparty = ThirdPartyLookupHandler()  # application services add their providers
    thirdparty_api.register(router, hs.thirdparty)

    # ---- admin API ------------------------------------------------------------

    hs.resource = RootResource(router, auth.authenticate, observer=getattr(hs, "request_observer", None))
    return hs


def start_listening(hs: HomeServer) -> None:
    """Bind every configured listener (real reactor only)."""
    from twisted.internet.error import CannotListenError
    from homeserver.observability.listener import configure_http_site, start_metrics

    start_metrics(hs)  # the `type: metrics` listeners (observability)
    for listener in hs.config.server.listeners:
        if listener.type != "http":
            continue
        site = hs.make_site()
        configure_http_site(site, listener, hs.metrics)  # request_id_header, `metrics` resource
        bound = []
        for addr in listener.bind_addresses or ["127.0.0.1"]:
            try:
                hs.reactor.listenTCP(listener.port, site, interface=addr)
            except CannotListenError:
                # "::" usually covers IPv4 too, so a following "0.0.0.0" fails
                # with "address in use"; Synapse logs that and carries on.
                if addr == "0.0.0.0" and "::" in bound:
                    logger.info("0.0.0.0:%d already covered by [::]:%d", listener.port, listener.port)
                    continue
                raise
            bound.append(addr)
            logger.info("listening on %s:%d", addr, listener.port)
