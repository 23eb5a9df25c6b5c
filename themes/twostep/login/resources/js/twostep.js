// twostep login theme: small fixes on top of keycloak.v2, loaded on every page (theme.properties
// "scripts"). keycloak.v2's template.ftl shows the attempted username in an input with id
// "kc-attempted-username" but its label points at "username": tie the label to the input so screen
// readers announce it (found by the axe-core check in tests/test_theme_browser.py).
document.addEventListener("DOMContentLoaded", function () {
    var input = document.getElementById("kc-attempted-username");
    if (input && !document.getElementById("username")) {
        var label = document.querySelector('label[for="username"]');
        if (label) {
            label.htmlFor = "kc-attempted-username";
        }
    }
});
