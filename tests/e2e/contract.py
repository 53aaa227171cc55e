"""Holds hookline to its description, openapi/hookline.yaml.

The harness hands every response it receives (Server.request, and so App.call and App.ok) to
check_response, and every request its Receivers get to check_delivery:

- A response is matched to the document's operation by method and path template. Its status must
  be one the operation lists, its Content-Type one that response lists, and its body must validate
  against that response's schema (JSON Schema 2020-12, $refs resolved in the document). A path the
  document does not have must answer 404 not_found; a method a documented path does not take must
  answer 405 method_not_allowed with an Allow header naming exactly the documented methods (or,
  under the app prefix, the 401/404 that authentication gives first).
- A delivery is matched to the document's webhooks by its event: its body must validate against
  that webhook's request body schema and its headers against the webhook's header parameters.

Anything else fails the test that received it, and is remembered: the suite fails at its end
(report()) even when a test swallowed the error, and says how much it validated.

The document is read with PyYAML and the schemas checked with jsonschema (Debian's python3-yaml
and python3-jsonschema; scripts/deps.sh installs them for /usr/bin/python3, which ctest uses).
"""
import json
import os
import threading

try:
    import jsonschema
    import yaml
    MISSING = None
except ImportError as e:  # reported by harness.main(): the suite then did not fully run
    jsonschema = yaml = None
    MISSING = "python3-yaml and python3-jsonschema (%s)" % e

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
APP_PREFIX = ("api", "v1", "appuid")


def _escape(token):
    return token.replace("~", "~0").replace("/", "~1")


def _media_type(value):
    return (value or "").split(";")[0].strip().lower()


class ContractError(AssertionError):
    pass


class Contract:
    """The document, and what was checked against it."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        self.path = path
        self.lock = threading.Lock()
        self.validators = {}
        self.responses = 0
        self.deliveries = 0
        self.covered = set()  # (METHOD, template, status) seen
        self.failures = []
        self.routes = []
        for template, item in self.doc.get("paths", {}).items():
            segs = [s for s in template.split("/") if s]
            literal = sum(1 for s in segs if not s.startswith("{"))
            self.routes.append((segs, literal, template, item))
        # Most literal segments first: /docs/reference.js before a /docs/{x} would win.
        self.routes.sort(key=lambda r: -r[1])

    # ---- the document ----

    def resolve(self, obj, pointer):
        """Follows a $ref (to a response, a parameter, a request body); returns (obj, pointer)."""
        seen = 0
        while isinstance(obj, dict) and "$ref" in obj:
            ref = obj["$ref"]
            if not ref.startswith("#/") or seen > 16:
                raise ContractError("cannot follow $ref %s" % ref)
            pointer, obj = ref, self.doc
            for part in ref[2:].split("/"):
                obj = obj[part.replace("~1", "/").replace("~0", "~")]
            seen += 1
        return obj, pointer

    def validator(self, pointer):
        """A validator of the schema at pointer, whose $refs resolve within the document."""
        with self.lock:
            v = self.validators.get(pointer)
            if v is None:
                root = dict(self.doc)
                root["$ref"] = pointer
                v = jsonschema.Draft202012Validator(root)
                self.validators[pointer] = v
            return v

    def schema_errors(self, pointer, value):
        errors = sorted(self.validator(pointer).iter_errors(value), key=lambda e: list(e.path))
        out = []
        for e in errors[:5]:
            where = "/".join(str(p) for p in e.path) or "(the body)"
            out.append("%s: %s" % (where, _best(e).message[:300]))
        return out

    def match(self, path):
        """The (template, path item) of a request path, or (None, None)."""
        segs = [s for s in path.split("?")[0].split("/") if s]
        for tsegs, _, template, item in self.routes:
            if len(tsegs) == len(segs) and all(t.startswith("{") or t == s
                                               for t, s in zip(tsegs, segs)):
                return template, item
        return None, None

    # ---- responses ----

    def check_response(self, method, path, status, headers, body):
        """Raises ContractError (and remembers it) unless the document describes this answer."""
        try:
            what = self._check_response(method.upper(), path, status, headers, body)
        except ContractError as e:
            msg = "%s %s -> %d does not follow %s: %s\n  body: %r" % (
                method, path, status, os.path.relpath(self.path), e, body[:400])
            with self.lock:
                self.failures.append(msg)
            raise ContractError(msg) from None
        with self.lock:
            self.responses += 1
            self.covered.add(what)

    def _check_response(self, method, path, status, headers, body):
        template, item = self.match(path)
        if template is None:
            self._check_error(status, body, 404, "not_found", "a path the document does not have")
            return (method, "(no such path)", status)
        op = item.get(method.lower()) or (item.get("get") if method == "HEAD" else None)
        if op is None:
            return self._check_other_method(method, path, template, item, status, headers, body)
        pointer = "#/paths/%s/%s" % (_escape(template), "get" if method == "HEAD" and
                                     "head" not in item else method.lower())
        responses = op.get("responses", {})
        key = next((k for k in (str(status), "%dXX" % (status // 100), "default")
                    if k in responses), None)
        if key is None:
            raise ContractError("status %d is not among the operation's (%s)"
                                % (status, ", ".join(sorted(responses))))
        resp, rpointer = self.resolve(responses[key], "%s/responses/%s" % (pointer, key))
        self._check_content(resp, rpointer, headers, body, method == "HEAD")
        return (method, template, status)

    def _check_content(self, resp, pointer, headers, body, head):
        content = resp.get("content")
        if not content:
            if body:
                raise ContractError("the answer has a body but the document gives it none")
            return
        if head:
            return
        if not body:
            raise ContractError("the answer has no body but the document gives it one")
        mt = _media_type(headers.get("content-type"))
        if mt not in content:
            raise ContractError("Content-Type %r is not among the answer's (%s)"
                                % (headers.get("content-type"), ", ".join(content)))
        spointer = "%s/content/%s/schema" % (pointer, _escape(mt))
        if "schema" not in content[mt]:
            return
        if mt == "application/json" or mt.endswith("+json"):
            try:
                value = json.loads(body)
            except ValueError as e:
                raise ContractError("the body is not JSON: %s" % e)
        else:
            try:
                value = body.decode("utf-8")
            except UnicodeDecodeError:
                raise ContractError("a %s body is not UTF-8" % mt)
        errors = self.schema_errors(spointer, value)
        if errors:
            raise ContractError("the body does not match %s:\n    %s"
                                % (self.resolve(content[mt]["schema"], spointer)[1],
                                   "\n    ".join(errors)))

    def _check_error(self, status, body, want, code, why):
        if status != want:
            raise ContractError("%s must answer %d, not %d" % (why, want, status))
        try:
            value = json.loads(body)
        except ValueError:
            raise ContractError("%s must answer a JSON error" % why)
        errors = self.schema_errors("#/components/schemas/Error", value)
        if errors or value["error"]["code"] != code:
            raise ContractError("%s must answer {\"error\":{\"code\":\"%s\",...}}: %s"
                                % (why, code, "; ".join(errors) or value["error"]["code"]))

    def _check_other_method(self, method, path, template, item, status, headers, body):
        documented = sorted(m.upper() for m in item if m in METHODS)
        if status == 405:
            self._check_error(status, body, 405, "method_not_allowed",
                              "%s, which %s does not take," % (method, template))
            allow = headers.get("allow")
            if allow is not None:
                got = sorted(m.strip().upper() for m in allow.split(",") if m.strip())
                if got != documented:
                    raise ContractError("Allow: %s, but the document has %s for %s"
                                        % (allow, ", ".join(documented), template))
            return (method, template + " (other methods)", status)
        # Under the app prefix the key is checked before the method: 401, or 404 for another
        # app's path, as the path's documented operations give them.
        segs = [s for s in path.split("?")[0].split("/") if s]
        if tuple(segs[:3]) == APP_PREFIX:
            for m in item:
                if m not in METHODS or str(status) not in item[m].get("responses", {}):
                    continue
                pointer = "#/paths/%s/%s/responses/%d" % (_escape(template), m, status)
                resp, rpointer = self.resolve(item[m]["responses"][str(status)], pointer)
                if status in (401, 404):
                    self._check_content(resp, rpointer, headers, body, False)
                    return (method, template + " (other methods)", status)
        raise ContractError("%s is not documented for %s (it has %s): want 405 with Allow"
                            % (method, template, ", ".join(documented)))

    # ---- deliveries ----

    def check_delivery(self, headers, body):
        """Raises ContractError (and remembers it) unless the document's webhooks describe this
        request. headers: lower-case names."""
        try:
            self._check_delivery(headers, body)
        except ContractError as e:
            msg = "a delivery does not follow %s's webhooks: %s\n  body: %r" % (
                os.path.relpath(self.path), e, body[:400])
            with self.lock:
                self.failures.append(msg)
            raise ContractError(msg) from None
        with self.lock:
            self.deliveries += 1

    def _check_delivery(self, headers, body):
        if _media_type(headers.get("content-type")) != "application/json":
            raise ContractError("Content-Type is %r" % headers.get("content-type"))
        try:
            env = json.loads(body)
        except ValueError as e:
            raise ContractError("the body is not JSON: %s" % e)
        event = env.get("event") if isinstance(env, dict) else None
        hooks = self.doc.get("webhooks", {})
        if event not in hooks:
            raise ContractError("event %r is not among the document's webhooks" % (event,))
        op = hooks[event]["post"]
        pointer = "#/webhooks/%s/post" % _escape(event)
        rb, rbpointer = self.resolve(op["requestBody"], pointer + "/requestBody")
        spointer = "%s/content/application~1json/schema" % rbpointer
        errors = self.schema_errors(spointer, env)
        if errors:
            raise ContractError("the %s body does not match:\n    %s"
                                % (event, "\n    ".join(errors)))
        for i, p in enumerate(op.get("parameters", [])):
            param, ppointer = self.resolve(p, "%s/parameters/%d" % (pointer, i))
            if param.get("in") != "header":
                continue
            value = headers.get(param["name"].lower())
            if value is None:
                if param.get("required"):
                    raise ContractError("header %s is missing" % param["name"])
                continue
            errors = self.schema_errors(ppointer + "/schema", value)
            if errors:
                raise ContractError("header %s: %r: %s" % (param["name"], value,
                                                           "; ".join(errors)))

    # ---- the end of a suite ----

    def report(self):
        """A line saying what was validated, and the failures (empty when none)."""
        line = ("openapi: validated %d responses (%d method/path/status combinations) and %d "
                "deliveries against %s" % (self.responses, len(self.covered), self.deliveries,
                                            os.path.relpath(self.path)))
        return line, list(self.failures)


def _best(error):
    """The most specific error under anyOf/oneOf (jsonschema's best_match)."""
    try:
        return jsonschema.exceptions.best_match([error]) or error
    except Exception:
        return error


_contract = None
_contract_lock = threading.Lock()


def contract(source_dir):
    """The one Contract of this process (None when the modules are missing)."""
    global _contract
    if MISSING:
        return None
    with _contract_lock:
        if _contract is None:
            _contract = Contract(os.path.join(source_dir, "openapi", "hookline.yaml"))
        return _contract
