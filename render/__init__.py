"""Figures, with no Streamlit: how each chart and pixel image looks (`charts`, Altair and PIL) and the
figure a page draws, its caption, alt text and PNG/SVG exports for slides (`figures`).
"""
