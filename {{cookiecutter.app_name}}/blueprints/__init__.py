"""One blueprint a module; `function_app` registers each of them."""
