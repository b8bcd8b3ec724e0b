"""A minimal mdmhub connector in Python, for the fictional Acme MDM.

Build it into a component with componentize-py (see README.md):
    componentize-py -d ../../wit/0.1.0 -w connector componentize app -o acme_py.wasm
"""
import json

from componentize_py_types import Err
from wit_world import WitWorld as WitWorldBase
from wit_world.imports import http, log
from wit_world.imports import types as t


def _field(key, label, secret):
    return t.ConfigField(key=key, label=label, help=None, required=True, secret=secret,
                         allowed_values=[], default_value=None)


class WitWorld(WitWorldBase):
    def describe(self) -> t.ConnectorInfo:
        return t.ConnectorInfo(
            id="acme-py",
            name="Acme MDM (Python example)",
            version="0.1.0",
            config=[_field("tenant", "Tenant", False), _field("api_token", "API token", True)],
            auth=t.AuthScheme_Bearer(t.BearerAuth(token_field="api_token")),
            origins=["https://{tenant}.acme-mdm.example"],
            rate_policy=t.RatePolicy(buckets=[t.RateBucket(requests=100, window_ms=1000, methods=[])], max_concurrent=2),
            resources=[t.ResourceInfo(kind=t.ResourceKind.USERS, scope=t.ResourceScope.TOP_LEVEL, supports_get=False)],
            actions=[],
            device_url_template=None,
        )

    def check(self, ctx: t.Context) -> None:
        self._get(ctx.origins[0] + "/api/v1/users", None)

    def list(self, ctx, kind, cursor, options) -> t.Page:
        if kind != t.ResourceKind.USERS:
            raise Err(t.ConnectorError_Unsupported(str(kind)))
        url = cursor or ctx.origins[0] + "/api/v1/users"
        resp = self._get(url, http.Paging_NextUrl(http.NextUrlPaging(url_pointer="/next")))
        body = json.loads(bytes(resp.body))
        records = [
            t.Entity_User(t.User(remote_id=str(u["id"]), email=u.get("email") or None, name=u.get("name") or None,
                                 username=None, department=None, job_title=None, is_active=u.get("active"),
                                 remote_data=json.dumps(u), extra=[]))
            for u in body["users"]
        ]
        log.write(log.Level.DEBUG, "listed users", [log.Field(key="count", value=str(len(records)))])
        return t.Page(records=records, next_cursor=resp.next, errors=[])

    def get(self, ctx, kind, id) -> t.Entity:
        raise Err(t.ConnectorError_Unsupported("get"))

    def action(self, ctx, device_id, request) -> t.ActionOutcome:
        raise Err(t.ConnectorError_Unsupported("action"))

    def _get(self, url, paging):
        try:
            resp = http.send(http.Request(method=t.Method.GET, url=url, headers=[], body=None), paging)
        except Err as e:
            raise Err(t.ConnectorError_ConnectionFailed(repr(e.value)))
        if resp.status == 401:
            raise Err(t.ConnectorError_Unauthorized("token refused"))
        if resp.status >= 300:
            raise Err(t.ConnectorError_ServerError(t.ServerErrorInfo(status=resp.status, message="HTTP error")))
        return resp
