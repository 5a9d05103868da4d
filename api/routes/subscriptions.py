"""Notification subscriptions, each owned by one department (contract section 6 delivers them)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from api.deps import STAFF_CHECKS, Audit, Caller, Ctx, Operator, State, acting_department
from api.errors import ApiError
from api.routes import AUTH_RESPONSES, BAD_BODY, FORBIDDEN, NOT_FOUND
from api.schemas import SubscriptionIn, SubscriptionOut
from domain.severity import Severity
from notify import TargetPolicy
from store.state.records import Subscription

# Site users have no subscriptions (403); viewers read their department's, operators also change them.
router = APIRouter(prefix="/api/v1/subscriptions", tags=["subscriptions"], dependencies=STAFF_CHECKS,
                   responses=AUTH_RESPONSES | FORBIDDEN)


def target_policy(ctx: Ctx) -> TargetPolicy:
    """The process's policy (tests inject one with a resolver of their own), else from Settings."""
    if ctx.targets is not None:
        return ctx.targets
    return TargetPolicy.from_settings(ctx.settings, ctx.district.name)


def _out(s: Subscription, ctx: Ctx) -> SubscriptionOut:
    return SubscriptionOut(
        id=s.id, department=s.department, channel=s.channel, url=s.url, has_secret=bool(s.secret),
        min_severity=s.min_severity.label,  # type: ignore[arg-type]
        families=list(s.families), streets=list(s.streets), sites=list(s.sites),
        created_at=s.created_at.astimezone(ctx.district.tz))


@router.post("", status_code=201, response_model=SubscriptionOut, responses=FORBIDDEN | BAD_BODY)
def create_subscription(body: SubscriptionIn, ctx: Ctx, caller: Operator, state: State, audit: Audit
                        ) -> SubscriptionOut:
    """Subscribe the caller's department (or, for the admin, the named one) to its alert events."""
    department = acting_department(caller, ctx, body.department)
    d = ctx.district
    for name, values, known in (("streets", body.streets, d.streets), ("sites", body.sites, d.sites)):
        unknown = [v for v in values if v not in known]
        if unknown:
            raise ApiError(422, f"body {name}: unknown {name[:-1]} {unknown[0]!r} "
                                "(not in the district config)")
    try:
        # Where it may point (contract section 6), on what the URL's host resolves to now.
        target_policy(ctx).check_subscription(body.channel, body.url, department, caller.is_admin)
        sub = state.create_subscription(
            department=department, channel=body.channel, url=body.url, secret=body.secret,
            min_severity=Severity.parse(body.min_severity), families=body.families, streets=body.streets,
            sites=body.sites, admin_scope=caller.is_admin)
    except ValueError as err:  # TargetRefused included
        raise ApiError(422, f"body {err}") from None
    audit.record("subscription.create", f"subscription:{sub.id}",
                 f"department {department}, {sub.channel} {sub.url}"[:200])
    return _out(sub, ctx)


@router.get("", response_model=list[SubscriptionOut])
def list_subscriptions(ctx: Ctx, caller: Caller, state: State,
                       department: str | None = Query(None, max_length=64,
                                                      description="admin: only this one's")
                       ) -> list[SubscriptionOut]:
    """The caller's subscriptions (the admin sees all, or one department's)."""
    if caller.department is not None:
        if department not in (None, caller.department):
            return []
        department = caller.department
    return [_out(s, ctx) for s in state.list_subscriptions(department)]


@router.get("/{subscription_id}", response_model=SubscriptionOut, responses=NOT_FOUND)
def get_subscription(subscription_id: str, ctx: Ctx, caller: Caller, state: State) -> SubscriptionOut:
    """One of the caller's subscriptions."""
    sub = state.get_subscription(subscription_id, caller.department)
    if sub is None:
        raise ApiError(404, f"subscription {subscription_id!r} not found")
    return _out(sub, ctx)


@router.delete("/{subscription_id}", status_code=204, response_class=Response,
               responses=NOT_FOUND | FORBIDDEN)
def delete_subscription(subscription_id: str, caller: Operator, state: State, audit: Audit) -> Response:
    """Delete one of the caller's subscriptions."""
    sub = state.get_subscription(subscription_id)
    if sub is None:
        raise ApiError(404, f"subscription {subscription_id!r} not found")
    if caller.department is not None and sub.department != caller.department:
        raise ApiError(403, f"subscription {subscription_id} belongs to department {sub.department!r}")
    if not state.delete_subscription(sub.id, caller.department):
        raise ApiError(404, f"subscription {subscription_id!r} not found")
    audit.record("subscription.delete", f"subscription:{sub.id}", f"department {sub.department}")
    return Response(status_code=204)
