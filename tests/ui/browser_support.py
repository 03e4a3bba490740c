"""Browser test support: Debian's Chromium driven by pip playwright, a page on the app, helpers.

Test modules take `pytestmark` from here; the `browser` and `open_page` fixtures are in conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "test-output"
DOCS = REPO / "docs"
LAST_BOT = "() => [...document.querySelectorAll('[data-testid=bot]')].pop()?.innerText ?? ''"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)"),
]


class Page:
    """A fresh browser page on the app, recording every request and dialog it makes."""

    def __init__(self, browser, url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.url = url
        self.responses: list[str] = []  # requests that reached a server (CSP-blocked ones do not)
        self.dialogs: list[str] = []
        self.page.on("response", lambda response: self.responses.append(response.url))
        self.page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))
        self.page.goto(url)
        self.page.wait_for_selector("#prompt textarea")

    def send(self, prompt: str) -> None:
        self.page.fill("#prompt textarea", prompt)
        self.page.press("#prompt textarea", "Enter")

    def answer(self) -> str:
        return self.page.evaluate(LAST_BOT)

    def status(self) -> str:
        return self.page.inner_text("#run-status")

    def wait_status(self, prefix: str, timeout: float = 15_000) -> str:
        self.page.wait_for_function(
            "prefix => document.querySelector('#run-status')?.innerText.startsWith(prefix)",
            arg=prefix, timeout=timeout,
        )
        return self.status()

    def pick_model(self, model_id: str) -> None:
        self.page.click("#model input")
        self.page.locator("ul[role=listbox] li", has_text=model_id).click()
        assert self.page.input_value("#model input") == model_id

    def choose(self, elem_id: str, option: str) -> None:
        """Pick `option` in the dropdown `#elem_id` (one more option, for a multiselect)."""
        self.page.click(f"#{elem_id} input")
        self.page.locator("ul[role=listbox] li", has_text=option).first.click()

    def open_tab(self, name: str) -> None:
        self.page.get_by_role("tab", name=name).click()

    def text_of(self, selector: str) -> str:
        return self.page.inner_text(selector)

    def wait_text(self, selector: str, expected: str, *, start: bool = False, timeout: float = 15_000) -> str:
        """Wait until the element's text contains (or starts with) `expected`; return the text."""
        test = "startsWith" if start else "includes"
        self.page.wait_for_function(
            f"([s, t]) => document.querySelector(s)?.innerText.{test}(t)", arg=[selector, expected],
            timeout=timeout,
        )
        return self.text_of(selector)

    def foreign_loads(self) -> list[str]:
        """Anything the page fetched from another origin."""
        return [url for url in self.responses if not url.startswith(self.url)]
