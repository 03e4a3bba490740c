"""What the browser keeps for a tab (`gr.BrowserState`), encrypted with a key of the deployment.

    saved = browser_state(context, "llmtool-chat")   # a gr.BrowserState({}) in the current Blocks

Gradio encrypts the value in the browser with the component's `secret`, which it sends to every
browser in the page config: it hides the value from a casual look at localStorage, it is no proof
of anything. So the key is derived from the deployment's secret (never the secret itself), the
same in every process and after a restart (what a browser kept can still be read), and whatever
comes back is checked like any input (ids are looked up, their owner compared with the login).
Gradio writes a value only when it is truthy in JavaScript: an empty dict is written, None is not.
"""

from __future__ import annotations

import hashlib
import hmac

import gradio as gr

from llmtool.web.context import AppContext


def browser_secret(context: AppContext, storage_key: str) -> str:
    return hmac.new(context.prepare().encode(), f"gradio-browser-state:{storage_key}".encode(),
                    hashlib.sha256).hexdigest()


def browser_state(context: AppContext, storage_key: str) -> gr.BrowserState:
    return gr.BrowserState({}, storage_key=storage_key, secret=browser_secret(context, storage_key))
