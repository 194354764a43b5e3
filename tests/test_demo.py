"""The demo (what `make demo` runs) shows the seed's error, the corrected call and parity."""

from lstm_bridge import demo


def test_demo_prints_the_seed_example_and_parity():
    lines = []
    assert demo.main(out=lines.append) == 0
    text = "\n".join(lines)
    assert "ValueError: hx h0 must have shape (2, 3, 16)" in text and "received (1, 3, 16)" in text
    assert "output (5, 3, 32)   hn (2, 3, 16)" in text
    assert "output (3, 5, 32)" in text
    assert "parity: OK" in text
