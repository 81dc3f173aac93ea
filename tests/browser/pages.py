"""What every browser test does first."""


def login(page, live_server, user) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "clave-secreta-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
