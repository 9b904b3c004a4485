"""What this CPU can run: the flags the bundled native code needs, read from /proc/cpuinfo."""

from chatsite import cpu, embedded_postgres
from conversations.recall import embedders

EPYC_WITHOUT_AVX512 = "processor\t: 0\nflags\t\t: fpu sse2 avx fma f16c bmi1 avx2 bmi2 sha_ni\n"
OLD_XEON = "processor\t: 0\nflags\t\t: fpu sse2 sse4_2 avx popcnt\nbugs\t\t: avx2\n"


def test_the_flags_are_read_from_the_first_flags_line():
    assert cpu.flags_from(OLD_XEON) == frozenset({"fpu", "sse2", "sse4_2", "avx", "popcnt"})
    assert cpu.flags_from("processor\t: 0\n") is None


def test_what_the_bundled_code_needs_is_named_when_missing(monkeypatch):
    monkeypatch.setattr(cpu, "flags", lambda: cpu.flags_from(EPYC_WITHOUT_AVX512))
    assert embedded_postgres.missing_cpu_flags() == ()
    assert cpu.missing(embedders.BUNDLED_CPU_FLAGS) == ()
    monkeypatch.setattr(cpu, "flags", lambda: cpu.flags_from(OLD_XEON))
    assert embedded_postgres.missing_cpu_flags() == ("avx2", "fma", "f16c", "bmi1", "bmi2")
    assert cpu.missing(embedders.BUNDLED_CPU_FLAGS) == ("avx2", "fma")


def test_unknown_flags_are_not_guessed_at(monkeypatch):
    monkeypatch.setattr(cpu, "flags", lambda: None)
    assert cpu.missing(["avx2"]) == ()
