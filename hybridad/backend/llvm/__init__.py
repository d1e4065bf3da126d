"""The LLVM backend: DAG -> LLVM IR (codegen), MCJIT compilation with a cache (engine),
and the native entry points' callers (runner)."""
