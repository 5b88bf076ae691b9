"""A page whose connection died comes back by itself (issue 28, docs/forwardmsg_cache.md).

Streamlit's client gives up its websocket for good on an error it cannot recover from (a "Cached ForwardMsg
MISS", a message it fails to decode): every widget is disabled and only a reload helps. A student's model
and settings are in the address (ui/links.py), so a reload loses nothing. `connection_guard` puts a small
script on the page, once per page load, that watches the client's connection state (stApp's
`data-test-connection-state`, `DISCONNECTED_FOREVER` once it has given up), waits RELOAD_DELAY_MS, waits
for the server to answer its health check, and reloads the page at its current address: at most
MAX_RELOADS times in RELOAD_WINDOW_MS (kept in sessionStorage, so a page that keeps dying stops trying and
shows Streamlit's own message instead of reloading in a loop).
"""

from __future__ import annotations

import streamlit as st

RELOAD_DELAY_MS = 1500  # a dead page is reloaded this long after it died (the student sees why it flickers)
MAX_RELOADS = 3  # reloads per tab within RELOAD_WINDOW_MS; a fourth death is left on screen
RELOAD_WINDOW_MS = 10 * 60 * 1000
HEALTH_POLL_MS = 2000  # while the server does not answer /_stcore/health (a restart), ask again this often
STORAGE_KEY = "bilinear-lab-reloads"  # sessionStorage: the times of this tab's recent reloads

GUARD_JS = f"""
(() => {{
    if (window.__labConnectionGuard) return;  // once per page load: Streamlit may mount this element again
    window.__labConnectionGuard = {{reloads: 0}};
    const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
    const dead = () => {{
        const app = document.querySelector('[data-testid="stApp"]');
        return !!app && app.getAttribute('data-test-connection-state') === 'DISCONNECTED_FOREVER';
    }};
    const recent = () => {{
        try {{
            return JSON.parse(sessionStorage.getItem('{STORAGE_KEY}') || '[]')
                .filter(t => Date.now() - t < {RELOAD_WINDOW_MS});
        }} catch (error) {{
            return [];
        }}
    }};
    let reviving = false;
    const revive = async () => {{
        reviving = true;
        const times = recent();
        if (times.length >= {MAX_RELOADS}) {{
            console.warn('Connection lost again: {MAX_RELOADS} automatic reloads already; reload the page.');
            return;  // Streamlit's own "connection error" stays on screen
        }}
        await sleep({RELOAD_DELAY_MS});
        for (;;) {{  // a reload helps only once the server answers
            try {{
                const health = await fetch(new URL('_stcore/health', window.location.href), {{cache: 'no-store'}});
                if (health.ok) break;
            }} catch (error) {{}}
            await sleep({HEALTH_POLL_MS});
        }}
        sessionStorage.setItem('{STORAGE_KEY}', JSON.stringify([...times, Date.now()]));
        window.location.reload();  // the address holds the model and the settings (ui/links.py)
    }};
    const check = () => {{
        if (!reviving && dead()) revive();
    }};
    setInterval(check, 500);
}})();
"""


def connection_guard() -> None:
    """The script above, on every full run at the same place (the end of the sidebar), so the page never
    shifts; it does its work once per page load."""
    with st.sidebar:
        st.html(f"<script>{GUARD_JS}</script>", width="content", unsafe_allow_javascript=True)
