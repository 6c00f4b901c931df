#!/usr/bin/env python3
"""Reference renderer for chat templates: jinja2 configured the way Hugging Face `transformers`
renders `tokenizer.chat_template` (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
loopcontrols, raise_exception, strftime_now, json.dumps-based tojson).

Reads {"cases": [{"template", "bos_token", "eos_token", "messages", "add_generation_prompt",
"tools" (optional), "kwargs" (optional)}]} as JSON on stdin and writes
{"jinja2": version, "results": [{"ok": text} | {"error": message}]} on stdout.

Pinned: jinja2 3.1.x (tested with 3.1.6).
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

if not jinja2.__version__.startswith("3.1."):
    sys.exit(f"template_render.py: jinja2 3.1.x required, found {jinja2.__version__}")


class Raised(Exception):
    pass


def raise_exception(message):
    raise Raised(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(fmt):
    return datetime.now().strftime(fmt)


class Generation(Extension):
    """`{% generation %}...{% endgeneration %}`: renders its body unchanged (transformers marks
    assistant tokens with it; only the rendered text matters here)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def environment():
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols, Generation]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, case):
    template = env.from_string(case["template"])
    kwargs = dict(case.get("kwargs") or {})
    return template.render(
        messages=case["messages"],
        tools=case.get("tools"),
        documents=None,
        add_generation_prompt=case["add_generation_prompt"],
        bos_token=case["bos_token"],
        eos_token=case["eos_token"],
        **kwargs,
    )


def main():
    cases = json.load(sys.stdin)["cases"]
    env = environment()
    results = []
    for case in cases:
        try:
            results.append({"ok": render(env, case)})
        except Raised as e:
            results.append({"raised": str(e)})
        except Exception as e:  # noqa: BLE001 - any other failure is reported as an error
            results.append({"error": f"{type(e).__name__}: {e}"})
    json.dump({"jinja2": jinja2.__version__, "results": results}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
