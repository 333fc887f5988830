"""Built-in backends, one module each; every module here is imported when tools are built."""
