<#-- twostep: keycloak.v2's footer.ftl is an empty hook meant for overriding. Ours shows the logo,
     the product name and, when the theme property twostepHelpUrl is set, a help link. -->
<#macro content>
    <div id="twostep-footer" class="twostep-footer">
        <#if properties.twostepLogo?has_content>
            <img src="${url.resourcesPath}/${properties.twostepLogo}" alt="" aria-hidden="true">
        </#if>
        <span id="twostep-product-name">${properties.twostepProductName!"twostep"}</span>
        <#if properties.twostepHelpUrl?has_content>
            <span aria-hidden="true">&middot;</span>
            <a id="twostep-help-link" href="${properties.twostepHelpUrl}">${msg("twostepFooterHelp")}</a>
        </#if>
    </div>
</#macro>
