"""Analytics (docs/api.md section 7): per code, per scope, per group."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel, Field

from qrpro.api.context import caller, now
from qrpro.api.openapi import errors
from qrpro.api.router import Router
from qrpro.data import analytics as scan_analytics
from qrpro.domain.analytics import AnalyticsRange, Device, Granularity, OsFamily

router = Router()
TAGS = ["Analytics"]
RangeQuery = Annotated[AnalyticsRange | None, Query(description="30d when absent; capped to the plan's retention")]
GranularityQuery = Annotated[Granularity | None, Query(description="day when absent; hour needs team or agency and "
                                                                   "range=7d")]


class Bucket(BaseModel):
    bucket: str = Field(description="YYYY-MM-DD or YYYY-MM-DD-HH (UTC)")
    scans: int


class Slice(BaseModel):
    key: str = Field(description="ISO 3166-1 alpha-2 country, or `Other`")
    total: int


class DeviceSlice(BaseModel):
    key: Device
    total: int


class OsSlice(BaseModel):
    key: OsFamily
    total: int


class TargetSlice(BaseModel):
    key: str = Field(description="`default`, `rule:<i>`, `split:<i>`, `fallback` (routing, section 14), or `other`")
    total: int


class Analytics(BaseModel):
    range: AnalyticsRange
    days: int = Field(description="the effective window after the retention cap")
    granularity: Granularity
    total: int = Field(description="equals the sum of timeseries, of by_country, of by_device, of by_os and of "
                                   "by_target; bots and link previews are not in it (see bots)")
    timeseries: list[Bucket] = Field(description="one entry per bucket, zero-filled, oldest first")
    by_country: list[Slice] = Field(description="largest first; countries under 5 scans and unknown ones in "
                                                "`Other`, last")
    by_device: list[DeviceSlice] = Field(description="mobile, tablet, desktop, unknown: non-zero ones, largest first")
    by_os: list[OsSlice] = Field(description="the visitors' operating systems: largest first; families under 5 scans "
                                             "(and scans counted before OS classes) in `other`, last")
    by_target: list[TargetSlice] = Field(description="where the scans went (routing): largest first; targets under "
                                                     "5 scans in `other`, last")
    bots: int = Field(description="requests of bots and link previews in the window: redirected, not in total")


class TopCode(BaseModel):
    id: str
    shortcode: str
    label: str | None
    total: int


class ScopeAnalytics(Analytics):
    top_codes: list[TopCode] = Field(description="the 10 codes with most scans in the window")


@router.get("/api/codes/<code_id>/analytics", operation_id="getCodeAnalytics", tags=TAGS, summary="Scans of one code",
            responses=errors(400, 404, ok=Analytics))
def code_analytics(code_id: str, range: RangeQuery = None, granularity: GranularityQuery = None) -> Analytics:
    c = caller(router)
    return Analytics.model_validate(scan_analytics.code_analytics(c.scope, code_id, c.plan_name, range, granularity,
                                                         now(router)))


@router.get("/api/analytics", operation_id="getScopeAnalytics",
            tags=TAGS, summary="Scans of every code in scope, with the top codes",
            responses=errors(400, ok=ScopeAnalytics))
def scope_analytics(range: RangeQuery = None, granularity: GranularityQuery = None) -> ScopeAnalytics:
    c = caller(router)
    return ScopeAnalytics.model_validate(scan_analytics.scope_analytics(c.scope, c.plan_name, range, granularity,
                                                               now(router)))


@router.get("/api/groups/<group_id>/analytics", operation_id="getGroupAnalytics",
            tags=TAGS, summary="Scans of a group's codes",
            responses=errors(400, 404, ok=Analytics))
def group_analytics(group_id: str, range: RangeQuery = None, granularity: GranularityQuery = None) -> Analytics:
    c = caller(router)
    return Analytics.model_validate(scan_analytics.group_analytics(c.scope, group_id, c.plan_name, range, granularity,
                                                          now(router)))
