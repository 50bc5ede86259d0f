"""Software prefetch for kernels that gather scattered rows.

A row gathered at random (a 512-byte signature) is nearly all waiting on
memory; asking for the rows a few iterations ahead overlaps those waits.
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

CACHE_LINE = 64


@intrinsic
def _prefetch(typingctx, arr, i, j):
    """Hint the CPU to load the cache line holding ``arr[i, j]`` (no fault, no effect
    on results)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 2):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        idx = [context.cast(builder, v, t, types.intp)
               for v, t in zip(args[1:], sig.args[1:])]
        ptr = cgutils.get_item_pointer(context, builder, sig.args[0], ary, idx)
        i8p, i32 = ir.PointerType(ir.IntType(8)), ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0")
        # read, high temporal locality, data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, i, j), codegen


@njit(cache=True, nogil=True, inline="always")
def prefetch_row(arr, i):
    """Prefetch every cache line of row ``i`` of a C-contiguous 2-D array."""
    step = max(CACHE_LINE // arr.itemsize, 1)
    for j in range(0, arr.shape[1], step):
        _prefetch(arr, i, j)
