"""llmtool's browser tool: `python app.py --help` for the flags, `gradio app.py` to edit with reload.

`demo` is module-level so Gradio's reload mode finds it; `python app.py` serves it (Gradio mounted
on FastAPI, with security headers) on 127.0.0.1:7860 unless told otherwise.
"""

import sys

from llmtool.ui.launch import main, module_demo

demo = module_demo()

if __name__ == "__main__":
    sys.exit(main(demo=demo))
