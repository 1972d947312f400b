"""Coverage-guided fuzzing of the gate (atheris); see fuzz_gate.py."""
