"""Regular expressions of L7 rules, checked as HAProxy compiles them: PCRE2 (libpcre2-8, the library Debian's
HAProxy links), case-sensitive, without auto-capture, then JIT-compiled; a JIT error other than "no JIT here"
fails the configuration, so it fails the spec too.

The proxy matches a rule's expression in full: netx writes it as ``^(?:EXPRESSION)$``, and both forms must
compile (an expression that compiles only inside the group, such as ``a)|(b``, would change its meaning).
"""

from __future__ import annotations

import ctypes
import functools

LIBRARY = "libpcre2-8.so.0"
NO_AUTO_CAPTURE = 0x00002000
JIT_COMPLETE = 0x1
ERROR_JIT_BADOPTION = -45


@functools.cache
def _pcre2() -> ctypes.CDLL:
    lib = ctypes.CDLL(LIBRARY)
    lib.pcre2_compile_8.restype = ctypes.c_void_p
    lib.pcre2_compile_8.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32, ctypes.POINTER(ctypes.c_int),
                                    ctypes.POINTER(ctypes.c_size_t), ctypes.c_void_p]
    lib.pcre2_jit_compile_8.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.pcre2_code_free_8.argtypes = [ctypes.c_void_p]
    lib.pcre2_get_error_message_8.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
    return lib


def anchored(expression: str) -> str:
    """The expression as the proxy matches it: in full."""
    return f"^(?:{expression})$"


def compile_error(expression: str) -> str | None:
    """Why HAProxy would refuse ``expression`` (None: it compiles, alone and anchored)."""
    try:
        lib = _pcre2()
    except OSError:
        return f"{LIBRARY} is missing, so the expression cannot be checked (fix: apt-get install haproxy)"
    error = _compile(lib, expression)
    if error:
        return error
    error = _compile(lib, anchored(expression))
    return f"{error} once anchored as {anchored(expression)}" if error else None


def _compile(lib: ctypes.CDLL, text: str) -> str | None:
    raw = text.encode()
    code, offset = ctypes.c_int(), ctypes.c_size_t()
    compiled = lib.pcre2_compile_8(raw, len(raw), NO_AUTO_CAPTURE, ctypes.byref(code), ctypes.byref(offset), None)
    if not compiled:
        message = ctypes.create_string_buffer(256)
        lib.pcre2_get_error_message_8(code.value, message, len(message))
        return f"{message.value.decode()} at offset {offset.value}"
    try:
        jit = lib.pcre2_jit_compile_8(compiled, JIT_COMPLETE)
        return None if jit in (0, ERROR_JIT_BADOPTION) else f"JIT compilation failed (error {jit})"
    finally:
        lib.pcre2_code_free_8(compiled)
