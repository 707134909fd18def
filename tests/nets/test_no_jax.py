"""Without JAX: importing works, fit says how to install it, fitted networks still predict."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import numpy as np

BLOCK = textwrap.dedent(
    """
    import sys
    for name in ("jax", "jaxlib", "optax"):
        sys.modules[name] = None  # `import jax` now raises ImportError
    """
)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300)


def test_without_jax(pbnet, bnn, blocks, tmp_path):
    """In a process where ``import jax`` fails: ``from bayesbin import nets`` works (so importing
    never needs JAX), ``fit`` raises the install hint, and pickled fitted networks predict."""
    _, _, xt, _ = blocks
    path = tmp_path / "fitted.pkl"
    with open(path, "wb") as fh:
        pickle.dump((pbnet, bnn, xt[:20]), fh)
    expected = {
        m: pbnet.predict_proba(xt[:20], method=m) for m in ("clt", "map", "ensemble")
    }
    np.save(tmp_path / "expected.npy", np.stack([expected[m] for m in ("clt", "map", "ensemble")]
                                                + [bnn.predict_proba(xt[:20])]))
    out = _run(f"""
        import pickle, numpy as np
        import bayesbin
        from bayesbin import nets
        x = np.zeros((6, 64)); y = np.array([0, 1, 2, 0, 1, 2])
        try:
            nets.BNN("64-3").fit(x, y)
        except ImportError as exc:
            print("IMPORTERROR", exc)
        with open({str(path)!r}, "rb") as fh:
            pb, bnn, xt = pickle.load(fh)
        exp = np.load({str(tmp_path / "expected.npy")!r})
        for i, m in enumerate(("clt", "map", "ensemble")):
            np.testing.assert_allclose(pb.predict_proba(xt, method=m), exp[i], rtol=1e-6)
        np.testing.assert_allclose(bnn.predict_proba(xt), exp[3], rtol=1e-6)
        idata = pb.sample_networks(3, random_state=0)
        print("NETS", len(nets.networks_from_idata(idata)), pb.predict(xt).shape)
        import sys
        print("JAXLOADED", any(sys.modules.get(k) is not None for k in ("jax", "optax")))
    """)
    assert out.returncode == 0, out.stderr
    assert 'IMPORTERROR' in out.stdout and 'pip install "bayesbin[nets]"' in out.stdout
    assert "NETS 3 (20,)" in out.stdout and "JAXLOADED False" in out.stdout
