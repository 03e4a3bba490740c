"""llmtool's browser tool: `python app.py --help` for the flags, `gradio app.py` to edit with reload.

`python app.py` serves `llmtool.web.app.create_app` (Gradio mounted on FastAPI, with security
headers) on 127.0.0.1:7860 unless told otherwise. Gradio's reload mode serves the module-level
`demo` instead (and finds it again in this module after each edit), so it is built only there.
"""

import sys

from llmtool.ui.launch import main, module_demo, reload_mode

demo = module_demo() if reload_mode() or __name__ != "__main__" else None

if __name__ == "__main__":
    sys.exit(main(demo=demo))
