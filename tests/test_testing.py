"""The fake Hello Retail itself, and the pytest plugin users get with the package."""

from __future__ import annotations

import json

import pytest
import requests

from hr_middleware import is_valid_id
from hr_middleware.testing import FakeHelloRetail, Mode, fake_products

from .ids import A

#: The fake over a real socket: the fake as users get it: an HTTP server.
pytestmark = pytest.mark.loopback

pytest_plugins = ["pytester"]


RECOMS = "/serve/recoms"


def post(fake: FakeHelloRetail, body: object, path: str = "/serve/trackingUser") -> requests.Response:
    return requests.post(
        fake.url + path, data=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=5
    )


def test_mints_valid_distinct_ids_and_records_requests(fake_hello_retail: FakeHelloRetail) -> None:
    answers = [post(fake_hello_retail, {"websiteUuid": fake_hello_retail.website_uuid}).json() for _ in range(3)]

    assert all(a["success"] is True and is_valid_id(a["id"]) for a in answers)
    assert [a["id"] for a in answers] == fake_hello_retail.minted
    assert fake_hello_retail.mint_count == 3
    assert [r.json for r in fake_hello_retail.mint_requests()] == [{"websiteUuid": fake_hello_retail.website_uuid}] * 3


def test_missing_website_uuid_is_a_500_like_the_real_service(fake_hello_retail: FakeHelloRetail) -> None:
    answer = post(fake_hello_retail, {})

    assert answer.status_code == 500
    assert answer.json()["success"] is False
    assert fake_hello_retail.mint_count == 0


def test_fail_every_nth_mint(fake_hello_retail: FakeHelloRetail) -> None:
    fake_hello_retail.fail_every = 3
    statuses = [post(fake_hello_retail, {"websiteUuid": "x"}).status_code for _ in range(6)]

    assert statuses == [200, 200, 500, 200, 200, 500]
    assert fake_hello_retail.mint_count == 4


def test_reset_forgets_counts_and_mode(fake_hello_retail: FakeHelloRetail) -> None:
    fake_hello_retail.mode = Mode.SERVER_ERROR
    post(fake_hello_retail, {"websiteUuid": "x"})
    fake_hello_retail.reset()

    assert (fake_hello_retail.mode, fake_hello_retail.mint_attempts, fake_hello_retail.requests) == (Mode.OK, 0, [])


def test_context_manager_starts_and_stops() -> None:
    with FakeHelloRetail() as fake:
        assert post(fake, {"websiteUuid": "x"}).status_code == 200
        url = fake.url
    with pytest.raises(requests.ConnectionError):
        requests.post(url + "/serve/trackingUser", json={}, timeout=2)


def test_the_canned_products_images_are_served_by_the_fake(fake_hello_retail: FakeHelloRetail) -> None:
    answer = post(fake_hello_retail, {"trackingUserId": "62a0317d17698aa57d369db9", "requests": [{"key": "k"}]}, RECOMS)
    products = answer.json()["responses"][0]["products"]
    fake_hello_retail.reset()

    images = [requests.get(p["imgUrl"], timeout=5) for p in products]
    again = requests.get(products[0]["imgUrl"], timeout=5)

    assert all(p["imgUrl"].startswith(fake_hello_retail.images_url + "/") for p in products)
    assert [i.status_code for i in images] == [200] * 4
    assert {i.headers["Content-Type"] for i in images} == {"image/svg+xml"}
    assert again.content == images[0].content  # the same picture every time
    assert len({i.content for i in images}) == 4  # and one per product
    title = products[0]["title"]
    initials = "".join(word[0] for word in title.split()).encode()
    assert f'aria-label="{title}"'.encode() in images[0].content
    assert b">" + initials + b"</text>" in images[0].content
    assert fake_hello_retail.requests == []  # pictures are not calls to Hello Retail


def test_fake_products_name_their_images_under_the_given_address() -> None:
    (product,) = fake_products("visitor", "scope", 0, 1, images="http://127.0.0.1:1/images")

    assert product["imgUrl"] == f"http://127.0.0.1:1/images/{product['productNumber']}-" + (
        product["title"].lower().replace(" ", "-") + ".svg"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/images/12345.png",
        "/images/classic-teapot.svg",
        "/images/12345-Classic.svg",
        "/images/12345-%3Cscript%3E.svg",
        "/images/../serve/trackingUser",
        "/images/",
        "/serve/trackingUser",
    ],
)
def test_anything_else_fetched_is_a_404(fake_hello_retail: FakeHelloRetail, path: str) -> None:
    answer = requests.get(fake_hello_retail.url + path, timeout=5)

    assert answer.status_code == 404
    assert b"<" not in answer.content  # nothing of the request reflected
    assert fake_hello_retail.requests == []


def test_the_plugin_gives_users_a_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from flask import Flask
        from hr_middleware import get_tracking_user_id
        from hr_middleware.flask import HelloRetail

        def test_shop(fake_hello_retail):
            app = Flask("shop")
            HelloRetail(app, **{"website_uuid": fake_hello_retail.website_uuid, "api_url": fake_hello_retail.url})
            app.get("/")(lambda: {"id": get_tracking_user_id()})
            client = app.test_client()
            page = {"Accept": "text/html", "User-Agent": "Mozilla/5.0 Firefox/130.0"}
            first = client.get("/", headers=page).json["id"]
            assert client.get("/", headers=page).json["id"] == first
            assert fake_hello_retail.mint_count == 1
        """
    )

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    result.assert_outcomes(passed=1)


def test_stop_closes_kept_alive_connections_so_hello_retail_is_really_down() -> None:
    from hr_middleware._hello_retail.errors import TransportError
    from hr_middleware._hello_retail.mint import Minter
    from hr_middleware.client import HelloRetailClient

    fake = FakeHelloRetail().start()
    minter = Minter(fake.settings(timeout=2.0))
    client = HelloRetailClient.from_settings(fake.settings(), timeout=2.0)
    visitor = A
    try:
        assert is_valid_id(minter.mint())
        assert client.recommendations([{"key": "k"}], tracking_user_id=visitor)["success"] is True
        assert len(fake.open_peers) == 2  # both kept their connection alive

        fake.stop()

        assert minter.mint() is None
        with pytest.raises(TransportError):
            client.recommendations([{"key": "k"}], tracking_user_id=visitor)
        assert fake.mint_count == 1
        assert len(fake.api_requests()) == 1
        assert fake.open_peers == set()
    finally:
        minter.close()
        client.close()
        fake.stop()
