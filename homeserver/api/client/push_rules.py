"""Client API: push rules (spec: client-server API, "Push Rules: API", pushrules.yaml)."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.push_rules import PushRulesHandler
from homeserver.http.router import CLIENT_PREFIX, HttpRequest, Router

_RULE = CLIENT_PREFIX + "/pushrules/global/{kind}/{ruleId}"


def register(router: Router, handler: PushRulesHandler) -> None:
    async def get_push_rules(request: HttpRequest) -> tuple[int, Any]:
        return 200, await handler.get_push_rules(request.user_id)

    async def get_push_rules_global(request: HttpRequest) -> tuple[int, Any]:
        return 200, await handler.get_ruleset(request.user_id)

    async def get_push_rule(request: HttpRequest) -> tuple[int, Any]:
        p = request.path_params
        return 200, await handler.get_push_rule(request.user_id, p["kind"], p["ruleId"])

    async def set_push_rule(request: HttpRequest) -> tuple[int, Any]:
        p = request.path_params
        await handler.set_push_rule(request.user_id, p["kind"], p["ruleId"], request.json(),
                                    request.query("before"), request.query("after"))
        return 200, {}

    async def delete_push_rule(request: HttpRequest) -> tuple[int, Any]:
        p = request.path_params
        await handler.delete_push_rule(request.user_id, p["kind"], p["ruleId"])
        return 200, {}

    async def is_push_rule_enabled(request: HttpRequest) -> tuple[int, Any]:
        p = request.path_params
        return 200, await handler.is_push_rule_enabled(request.user_id, p["kind"], p["ruleId"])

    async def set_push_rule_enabled(request: HttpRequest) -> tuple[int, Any]:
        p = request.path_params
        await handler.set_push_rule_enabled(request.user_id, p["kind"], p["ruleId"], request.json())
        return 200, {}

    async def get_push_rule_actions(request: HttpRequest) -> tuple[int, Any]:
        p = request.path_params
        return 200, await handler.get_push_rule_actions(request.user_id, p["kind"], p["ruleId"])

    async def set_push_rule_actions(request: HttpRequest) -> tuple[int, Any]:
        p = request.path_params
        await handler.set_push_rule_actions(request.user_id, p["kind"], p["ruleId"], request.json())
        return 200, {}

    router.add("GET", CLIENT_PREFIX + "/pushrules/?", get_push_rules)
    router.add("GET", CLIENT_PREFIX + "/pushrules/global/?", get_push_rules_global)
    router.add("GET", _RULE, get_push_rule)
    router.add("PUT", _RULE, set_push_rule)
    router.add("DELETE", _RULE, delete_push_rule)
    router.add("GET", _RULE + "/enabled", is_push_rule_enabled)
    router.add("PUT", _RULE + "/enabled", set_push_rule_enabled)
    router.add("GET", _RULE + "/actions", get_push_rule_actions)
    router.add("PUT", _RULE + "/actions", set_push_rule_actions)
