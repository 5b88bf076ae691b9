"""Every page with models of every width the app accepts: widget ranges follow the model on screen.

An Explain slider once kept its value 6 for a model with 5 eigenvectors ("StreamlitValueAboveMaxError"),
and a slider whose range collapses to one value (d_hidden = 1) is not a slider at all.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.config import MAX_D_HIDDEN, Config
from core.eigen import decompose
from core.identity import TrainedModel
from core.train import new_model
from tests.app.test_app import APP, PAGES, TIMEOUT, assert_clean


@pytest.mark.parametrize("d_hidden", [1, 2, 4, MAX_D_HIDDEN])
def test_every_page_with_a_model_of_this_width(d_hidden):
    config = Config(d_hidden=d_hidden, seed=d_hidden)
    trained = TrainedModel(new_model(config), config, (), "uploaded")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["active"] = trained
    at.session_state["top_k"], at.session_state["eig_index"], at.session_state["explain_top"] = 8, 1024, 12
    at.run()
    for page in PAGES:
        at.switch_page(page).run()
        assert_clean(at)
        assert at.session_state["active"] is trained, page
        for slider in at.slider:
            assert slider.min <= slider.value <= slider.max, f"{page}: {slider.key} = {slider.value}"
        if page == "app_pages/eigenvectors.py":
            at.segmented_control(key="eig_matrix").set_value("augmented").run()
            assert_clean(at)


def test_the_spectrum_caption_agrees_with_one_eigenvector():
    """A width-1 model's bias-free block has one eigenvector, which carries all of Σλ²: "1 of 1 … carries", not
    "carry" (a trained width-16 model read "1 of 16 eigenvectors (largest |λ| first) carry 90 % of it"), and when its
    eigenvalue is negative the page does not say "The top eigenvalue carries 0% of Σλ²" beside it."""
    config = Config(d_hidden=1, seed=1)
    trained = TrainedModel(new_model(config), config, (), "uploaded")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["active"] = trained
    at.run()
    at.switch_page("app_pages/eigenvectors.py").run()
    assert_clean(at)
    (caption,) = [c.value for c in at.caption if "largest |λ| first" in c.value]
    assert "1 of 1 eigenvectors (largest |λ| first) carries 90 %" in caption, caption
    (eigenvalue,) = decompose(trained.model, "true_minus_false", "bias_free").eigenvalues.tolist()
    assert caption.startswith("No eigenvalue is positive" if eigenvalue < 0 else "The top eigenvalue carries 100%")
