"""What one server shares among its sessions, with no Streamlit: the training pool (`jobs`), the models it
holds and writes to the store (`registry`), the class room's pin, votes and flags (`classroom`) and the page
scripts' turns (`turns`). ui.resources makes one of each per server process.
"""
