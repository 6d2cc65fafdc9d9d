"""The retriever and generator versions in the admin at 1280 px (Chromium,
Playwright), light and dark: every column of the list fits the screen, none
of its values is cut. Screenshots go to data-test/screenshots/."""

import pytest

from generation.models import GeneratorVersion
from retrieval.models import RetrieverVersion
from tests.e2e.test_admin_documents_browser import admin_log_in, shoot
from tests.e2e.test_browser import page  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser]

FITS = """() => {
    const table = document.querySelector("#result_list");
    const results = table.closest(".results");
    const cells = [...table.querySelectorAll("th, td")];
    const filter = document.querySelector("#changelist-filter");
    return {
        page: document.documentElement.scrollWidth,
        hidden: results.scrollWidth - results.clientWidth,  // columns scrolled out of the list's own box
        table: table.getBoundingClientRect().right,
        beside: filter ? filter.getBoundingClientRect().left : 1280,
        cut: cells.filter((c) => c.scrollWidth > c.clientWidth + 1).map((c) => c.className + ": " + c.innerText),
        headers: [...table.querySelectorAll("thead th")].map((h) => h.innerText.trim()),
    };
}"""


@pytest.fixture
def versions(db):
    decision = {"serving_recall": 0.712, "finetuned_recall": 0.804}
    reranker = {"decision": {"use": True, "gain": 0.031, "cost_ms_p50": 42, "depth": 20}}
    for number in (1, 2, 3):
        RetrieverVersion.objects.create(
            number=number,
            name=f"retriever-v{number}",
            path=f"/data/retrievers/v{number}",
            status="ready" if number < 3 else "training",
            is_active=number == 2,
            stage="training" if number == 3 else "",
            progress_done=120 if number == 3 else 0,
            progress_total=400 if number == 3 else 0,
            pairs={"synthetic": 1840, "feedback": 37, "hard negatives": 912},
            metrics={"decision": decision, "reranker": reranker},
        )
        GeneratorVersion.objects.create(
            number=number,
            name=f"generator-v{number}",
            path=f"/data/generators/v{number}.gguf",
            status="ready",
            is_active=number == 1,
            examples={"answerable": 960, "unanswerable": 240, "dropped": 12},
            metrics={"decision": {"use": number == 1}},
        )


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("model", ["retrieval/retrieverversion", "generation/generatorversion"])
def test_the_version_lists_fit_1280_px(page, live_server, admin_user, versions, model, scheme):  # noqa: F811
    page.set_viewport_size({"width": 1280, "height": 800})
    page.emulate_media(color_scheme=scheme)
    admin_log_in(page, live_server, f"/admin/{model}/")
    page.locator("#result_list").wait_for()
    found = page.evaluate(FITS)
    shoot(page, f"admin-{model.split('/')[1]}s-1280-{scheme}")
    assert found["page"] <= 1280 and found["hidden"] <= 0 and found["table"] <= found["beside"], found
    assert found["cut"] == [], found["cut"]
