"""The threads' side of a threaded tensor-kernel call: one LLVM module per process.

loops.py cuts a program into stages of fixed chunks; this module is the small runtime
the calling thread and pool helpers share to claim those chunks (``work``), and the
slot protocol that hands a call to a helper thread (``post``, ``serve``, ``retract``).
It is kernel-independent, so kernels compile no more than their stages and ``run``.
"""

from __future__ import annotations

from functools import lru_cache

# The threads' side of a threaded call: one module per process (tensor_kernel._Team),
# whatever the kernel, so kernels compile no more than their stages and run.
#
# void work(i64* plan, i8** objects, i64* sync, i64 first, i64 end, i64 back): stages
# [first, end) of the kernel whose ``plan`` is (stage function, chunks) per stage,
# shared by every thread that calls it with the same ``sync`` (three zeroed counters per
# stage). A stage's chunks are two halves: the calling thread (back = 0) owns the first,
# the helpers (back = 1) the second. Each thread claims chunks one at a time (compare-
# and-swap on its half's counter: claims from the bottom in the low 32 bits, from the top
# in the high ones) and runs chunk c as stage(objects, c, c + 1); when its half is
# exhausted it takes what is left of the other half, from the same side. The side
# alternates from stage to stage (the caller climbs its half in even stages and comes
# back down in odd ones, the helpers the other way), so each thread starts a stage where
# it left the previous one, on data still in its cache. A stage begins only when every
# chunk of the previous one is done (release / acquire on the third counter), so one
# thread alone, or a thread that starts late, still completes the stages: nobody waits
# for a thread that never comes. A serial stage is one chunk, run by whoever claims it.
#
# A helper's slot is six i64: state (0 empty, 1 posted, 2 taken), then the job: plan,
# objects, sync, first stage, end stage.
#   post(slot, ...): the job's fields, then state = 1 (release).
#   serve(slot, polls): take posted jobs (1 -> 2), run them (as a helper), state = 0
#     (release); return after ``polls`` polls in a row found nothing (the thread stays
#     hot meanwhile).
#   retract(slot): the caller, its own share done: 1 -> 0 if nobody took the job, else
#     wait until the server has finished it (state 0), so the job's memory may go.
_TEAM = """define void @work(i64* %plan, i8** noalias %objects, i64* %sync, i64 %first,
                   i64 %end, i64 %back) nounwind {
entry:
  %helper = icmp ne i64 %back, 0
  br label %stage
stage:
  %s = phi i64 [%first, %entry], [%s.next, %finished]
  %more = icmp slt i64 %s, %end
  br i1 %more, label %start, label %exit
start:
  %fn.i = shl i64 %s, 1
  %fn.p = getelementptr i64, i64* %plan, i64 %fn.i
  %fn.v = load i64, i64* %fn.p
  %fn = inttoptr i64 %fn.v to void (i8**, i64, i64)*
  %count.i = add i64 %fn.i, 1
  %count.p = getelementptr i64, i64* %plan, i64 %count.i
  %count = load i64, i64* %count.p
  %low.i = mul i64 %s, 3
  %low.p = getelementptr i64, i64* %sync, i64 %low.i
  %high.i = add i64 %low.i, 1
  %high.p = getelementptr i64, i64* %sync, i64 %high.i
  %done.i = add i64 %low.i, 2
  %done.p = getelementptr i64, i64* %sync, i64 %done.i
  %half = lshr i64 %count, 1
  %upper = sub i64 %count, %half
  %odd = trunc i64 %s to i1
  %top = xor i1 %helper, %odd
  %step = select i1 %top, i64 4294967296, i64 1
  %own.p = select i1 %helper, i64* %high.p, i64* %low.p
  %own.base = select i1 %helper, i64 %half, i64 0
  %own.size = select i1 %helper, i64 %upper, i64 %half
  %other.p = select i1 %helper, i64* %low.p, i64* %high.p
  %other.base = select i1 %helper, i64 0, i64 %half
  %other.size = select i1 %helper, i64 %half, i64 %upper
  br label %claim
claim:
  %stealing = phi i1 [false, %start], [%stealing, %ran], [true, %steal]
  %p = select i1 %stealing, i64* %other.p, i64* %own.p
  %base = select i1 %stealing, i64 %other.base, i64 %own.base
  %size = select i1 %stealing, i64 %other.size, i64 %own.size
  %seen = load atomic i64, i64* %p monotonic, align 8
  br label %try
try:
  %w = phi i64 [%seen, %claim], [%w.now, %retry]
  %from.bottom = and i64 %w, 4294967295
  %from.top = lshr i64 %w, 32
  %taken = add i64 %from.bottom, %from.top
  %left = icmp slt i64 %taken, %size
  br i1 %left, label %cas, label %exhausted
cas:
  %w.new = add i64 %w, %step
  %r = cmpxchg i64* %p, i64 %w, i64 %w.new monotonic monotonic
  %w.now = extractvalue { i64, i1 } %r, 0
  %ok = extractvalue { i64, i1 } %r, 1
  br i1 %ok, label %ran, label %retry
retry:
  br label %try
ran:
  %c.bottom = add i64 %base, %from.bottom
  %c.end.top = add i64 %base, %size
  %c.top.1 = sub i64 %c.end.top, %from.top
  %c.top = sub i64 %c.top.1, 1
  %c = select i1 %top, i64 %c.top, i64 %c.bottom
  %c.end = add i64 %c, 1
  call void %fn(i8** %objects, i64 %c, i64 %c.end)
  %ignored = atomicrmw add i64* %done.p, i64 1 release
  br label %claim
exhausted:
  br i1 %stealing, label %wait, label %steal
steal:
  br label %claim
wait:
  %done = load atomic i64, i64* %done.p acquire, align 8
  %all = icmp sge i64 %done, %count
  br i1 %all, label %finished, label %wait.yield
wait.yield:
  YIELD
  br label %wait
finished:
  %s.next = add i64 %s, 1
  br label %stage
exit:
  ret void
}

define void @post(i64* %slot, i64 %plan, i64 %objects, i64 %sync, i64 %first,
                  i64 %end) nounwind {
  %p1 = getelementptr i64, i64* %slot, i64 1
  store i64 %plan, i64* %p1
  %p2 = getelementptr i64, i64* %slot, i64 2
  store i64 %objects, i64* %p2
  %p3 = getelementptr i64, i64* %slot, i64 3
  store i64 %sync, i64* %p3
  %p4 = getelementptr i64, i64* %slot, i64 4
  store i64 %first, i64* %p4
  %p5 = getelementptr i64, i64* %slot, i64 5
  store i64 %end, i64* %p5
  store atomic i64 1, i64* %slot release, align 8
  ret void
}

define void @retract(i64* %slot) nounwind {
entry:
  %r = cmpxchg i64* %slot, i64 1, i64 0 acq_rel monotonic
  %ok = extractvalue { i64, i1 } %r, 1
  br i1 %ok, label %exit, label %wait
wait:
  %s = load atomic i64, i64* %slot acquire, align 8
  %busy = icmp eq i64 %s, 2
  br i1 %busy, label %wait.yield, label %exit
wait.yield:
  YIELD
  br label %wait
exit:
  ret void
}

define void @serve(i64* %slot, i64 %polls) nounwind {
entry:
  br label %poll
poll:
  %idle = phi i64 [0, %entry], [0, %run], [%idle.next, %wait.yield]
  %s = load atomic i64, i64* %slot acquire, align 8
  %posted = icmp eq i64 %s, 1
  br i1 %posted, label %take, label %idle.check
take:
  %r = cmpxchg i64* %slot, i64 1, i64 2 acq_rel acquire
  %ok = extractvalue { i64, i1 } %r, 1
  br i1 %ok, label %run, label %idle.check
run:
  %p1 = getelementptr i64, i64* %slot, i64 1
  %plan.i = load i64, i64* %p1
  %p2 = getelementptr i64, i64* %slot, i64 2
  %objects.i = load i64, i64* %p2
  %p3 = getelementptr i64, i64* %slot, i64 3
  %sync.i = load i64, i64* %p3
  %p4 = getelementptr i64, i64* %slot, i64 4
  %first = load i64, i64* %p4
  %p5 = getelementptr i64, i64* %slot, i64 5
  %end = load i64, i64* %p5
  %plan = inttoptr i64 %plan.i to i64*
  %objects = inttoptr i64 %objects.i to i8**
  %sync = inttoptr i64 %sync.i to i64*
  call void @work(i64* %plan, i8** %objects, i64* %sync, i64 %first, i64 %end, i64 1)
  store atomic i64 0, i64* %slot release, align 8
  br label %poll
idle.check:
  %idle.next = add i64 %idle, 1
  %tired = icmp sge i64 %idle.next, %polls
  br i1 %tired, label %exit, label %wait.yield
wait.yield:
  YIELD
  br label %poll
exit:
  ret void
}
"""


def team_ir() -> str:
    """The module of work / post / serve / retract (see _TEAM); a thread that waits
    yields its core (sched_yield) to any thread that has work."""
    if _can_yield():
        return ("declare i32 @sched_yield() nounwind\n\n" +
                _TEAM.replace("YIELD", "%yielded = call i32 @sched_yield()"))
    return _TEAM.replace("YIELD", "")


@lru_cache(maxsize=1)
def _can_yield() -> bool:
    """Whether the C library's sched_yield resolves in this process (POSIX)."""
    import ctypes

    try:
        return hasattr(ctypes.CDLL(None), "sched_yield")
    except (OSError, TypeError):
        return False
